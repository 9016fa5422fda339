#!/usr/bin/env bash
# Builds a minimal Redis/Valkey node image (or the fault tools image) from Debian packages, without any
# container registry.
#
#   build-node-image.sh --tag TAG --suite SUITE [--extra-suite SUITE]... [--insecure-release-date] \
#                       [--arch ARCH] [--label KEY=VALUE]... --server-bin PATH --cli-bin PATH -- PACKAGE...
#   build-node-image.sh --tools --tag TAG --suite SUITE [--arch ARCH] [--label KEY=VALUE]... \
#                       --bin PATH [--bin PATH]... -- PACKAGE...
#
# --tools makes the image the fault commands run in (iptables, tc, a static busybox for `sh -c`): the same
# steps, with the listed binaries instead of a server and its cli, iptables' extension modules (loaded with
# dlopen, so the loader's listing cannot show them), label cluster-tests.image=tools and no entry point.
#
# 1. mmdebstrap unpacks PACKAGE... and their dependencies (variant "extract": nothing is configured, no
#    maintainer script runs) from SUITE (plus the extra suites, e.g. backports) into a temporary directory.
#    As root it runs in its root mode; as any other user (one in the docker group) in its unshare mode (user
#    namespaces, written out as a tar file and unpacked here) or, where those are off, its fakechroot mode.
# 2. A minimal root filesystem is assembled from it: the server and cli binaries, every shared object they
#    load (found by the suite's own dynamic loader, called with the unpacked library directories as its only
#    search path: no chroot), the symlinks on the way, /etc/passwd, /etc/group, /etc/nsswitch.conf, an empty
#    /data and /tmp. No shell, no package manager, no docs.
# 3. The tree is imported with `docker import` (atomic: TAG appears only once the image is complete), with
#    WORKDIR /data and the server binary as ENTRYPOINT, so `docker run TAG --port 7001 ...` starts a server.
#
# --arch picks the Debian architecture (default: the host's, `dpkg --print-architecture`); another one needs the
# host to run its binaries (binfmt emulation), since the suite's loader runs them. The image is labelled with it.
#
# --insecure-release-date lets apt accept an expired Release file (past Valid-Until) for SUITE only; the
# extra suites are still checked. The version matrix that drives this script is images/versions.toml.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), TMPDIR. Needs mmdebstrap and docker; as
# a user other than root also newuidmap (package uidmap) and user namespaces, or fakechroot and fakeroot.
# The script may be fed on stdin (`bash -s -- ARGS < build-node-image.sh`): no command it runs reads stdin.

set -euo pipefail
umask 022

PROG=build-node-image.sh

usage() {
    cat <<EOF
usage: $PROG --tag TAG --suite SUITE [--extra-suite SUITE]... [--insecure-release-date]
       $(printf '%*s' ${#PROG} '') [--arch ARCH] [--label KEY=VALUE]... --server-bin PATH --cli-bin PATH -- PACKAGE...
       $PROG --tools --tag TAG --suite SUITE [--arch ARCH] [--label KEY=VALUE]... --bin PATH [--bin PATH]... -- PACKAGE...
Builds a minimal server image (or, with --tools, the fault tools image) from Debian packages with mmdebstrap
and imports it as TAG.
EOF
}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

step() {
    printf '[%s/3] %s\n' "$1" "$2" >&2
}

WORK=""
CHILD=""
COPIED=""

cleanup() {
    local status=$?
    if [[ -n $CHILD ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        # mmdebstrap unmounts what it mounts, but never delete through a mount point left behind.
        local mnt
        while read -r mnt; do
            umount -l -- "$mnt" 2>/dev/null || true
        done < <(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r)
        rm -rf --one-file-system -- "$WORK" 2>/dev/null || chmod -R u+rwX -- "$WORK" 2>/dev/null || true
        rm -rf --one-file-system -- "$WORK"
    fi
    return "$status"
}

# copy_path PATH: copies PATH (absolute, inside $ROOT) to the same place in $OUT, recreating each symlink
# met on the way (absolute symlink targets are taken relative to $ROOT, never the host) and then copying
# what it points to. Sets COPIED to the path of the file finally copied, free of symlinks.
copy_path() {
    local path=$1 depth=${2:-0}
    ((depth < 40)) || die "too many levels of symbolic links resolving $path"
    local -a comps
    local cur="" comp target rest i n
    IFS=/ read -r -a comps <<<"${path#/}"
    n=${#comps[@]}
    for ((i = 0; i < n; i++)); do
        comp=${comps[i]}
        case $comp in
            '' | .) continue ;;
            ..) cur=${cur%/*}; continue ;;
        esac
        cur+=/$comp
        if [[ -L $ROOT$cur ]]; then
            target=$(readlink -- "$ROOT$cur")
            if [[ ! -L $OUT$cur ]]; then
                mkdir -p -- "$OUT${cur%/*}"
                ln -s -- "$target" "$OUT$cur"
            fi
            [[ $target == /* ]] || target=${cur%/*}/$target
            rest=$(IFS=/; printf '%s' "${comps[*]:i+1}")
            copy_path "$target${rest:+/$rest}" $((depth + 1))
            return
        elif [[ -d $ROOT$cur ]]; then
            mkdir -p -- "$OUT$cur"
        elif [[ -f $ROOT$cur && $i -eq $((n - 1)) ]]; then
            [[ -e $OUT$cur ]] || cp -p -- "$ROOT$cur" "$OUT$cur"
            COPIED=$cur
            return
        else
            die "$path: not found in the unpacked packages (at $cur)"
        fi
    done
}

# elf_interpreter FILE: the ELF program interpreter (dynamic loader) FILE asks for.
elf_interpreter() {
    if command -v readelf >/dev/null; then
        readelf -l -- "$1" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p' | head -n1
    else
        # PT_INTERP sits in the first page of the file.
        head -c 4096 -- "$1" | tr -c '[:print:]' '\n' | grep -m1 -E '^/[[:alnum:]_/.+-]*/ld[-.][[:alnum:]_.+-]*\.so[.0-9]*$' || true
    fi
}

# in_root PATH: PATH (absolute, inside $ROOT) with every symlink resolved inside $ROOT, never on the host.
in_root() {
    local path=$1 depth=0 cur comp target
    while ((depth++ < 40)); do
        local -a comps
        IFS=/ read -r -a comps <<<"${path#/}"
        cur=""
        local i n=${#comps[@]} moved=0
        for ((i = 0; i < n; i++)); do
            comp=${comps[i]}
            case $comp in
                '' | .) continue ;;
                ..) cur=${cur%/*}; continue ;;
            esac
            cur+=/$comp
            if [[ -L $ROOT$cur ]]; then
                target=$(readlink -- "$ROOT$cur")
                [[ $target == /* ]] || target=${cur%/*}/$target
                path=$target$(IFS=/; rest="${comps[*]:i+1}"; printf '%s' "${rest:+/$rest}")
                moved=1
                break
            fi
        done
        ((moved)) || { printf '%s\n' "$cur"; return; }
    done
    die "too many levels of symbolic links resolving $1"
}

# library_path TREE: the library directories of TREE (the loader's defaults for the multiarch triplet, and
# those its ld.so.conf.d names), as host paths, joined with ':'.
library_path() {
    local tree=$1 dir conf line
    local -a dirs=()
    for conf in "$tree"/etc/ld.so.conf.d/*.conf; do
        [[ -f $conf ]] || continue
        while read -r line; do
            [[ $line == /* ]] && dirs+=("$tree$line")
        done <"$conf"
    done
    for dir in /lib/"$TRIPLET" /usr/lib/"$TRIPLET" /lib /usr/lib /lib64 /usr/lib64; do
        dirs+=("$tree$dir")
    done
    (IFS=:; printf '%s' "${dirs[*]}")
}

# run_in TREE FILE ARG...: runs FILE of TREE by calling TREE's own loader on it with TREE's library
# directories as the only search path (no ld.so.cache): what a chroot would run, without needing root.
run_in() {
    local tree=$1 file=$2
    shift 2
    "$tree$LOADER" --inhibit-cache --library-path "$(library_path "$tree")" "$tree$file" "$@"
}

# needed_objects FILE...: absolute paths (inside $ROOT) of the shared objects FILE... load, the loader
# included, as resolved by the suite's own loader.
needed_objects() {
    local file listing lib
    local -a found=()
    for file in "$@"; do
        listing=$("$ROOT$LOADER" --inhibit-cache --library-path "$(library_path "$ROOT")" --list "$ROOT$file" 2>&1) ||
            die "resolving the libraries of $file failed: $listing"
        if grep -q 'not found' <<<"$listing"; then
            die "$file needs libraries that no unpacked package provides:"$'\n'"$(grep 'not found' <<<"$listing")"
        fi
        while read -r lib; do
            if [[ $lib == "$INTERP" ]]; then
                found+=("$lib") # the loader, by the name the binaries ask for
            elif [[ $lib == "$ROOT"/* ]]; then
                found+=("${lib#"$ROOT"}")
            else
                # Found outside the unpacked tree: the host has it, the suite's packages do not.
                die "$file needs $lib, which no unpacked package provides"
            fi
        done < <(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; next } }' <<<"$listing")
    done
    printf '%s\n' "${found[@]}" | sort -u
}

# build_mode: how mmdebstrap gets to unpack root-owned files: `root` as root; else `unshare` where user
# namespaces work and /etc/subuid and /etc/subgid give this user a range; else `fakechroot` where it is
# installed. Dies with what to enable otherwise.
build_mode() {
    if [[ $(id -u) == 0 ]]; then
        echo root
        return
    fi
    local user why=""
    user=$(id -un)
    if ! command -v newuidmap >/dev/null || ! command -v newgidmap >/dev/null; then
        why="newuidmap/newgidmap are missing (package uidmap)"
    elif ! grep -qE "^($user|$(id -u)):" /etc/subuid 2>/dev/null || ! grep -qE "^($user|$(id -u)):" /etc/subgid 2>/dev/null; then
        why="/etc/subuid or /etc/subgid has no range for $user (add one: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $user)"
    elif ! unshare --user --map-root-user true 2>/dev/null; then
        why="unprivileged user namespaces are off (enable them: sudo sysctl -w kernel.unprivileged_userns_clone=1 on Debian kernels, user.max_user_namespaces=15000 where it is 0, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 23.10+)"
    else
        echo unshare
        return
    fi
    if command -v fakechroot >/dev/null && command -v fakeroot >/dev/null; then
        printf 'note: mmdebstrap runs in its fakechroot mode: %s\n' "$why" >&2
        echo fakechroot
        return
    fi
    die "building as $user (not root) needs mmdebstrap's unshare mode, and $why; or install fakechroot and fakeroot (sudo apt-get install -y fakechroot fakeroot); or build as root once: sudo -E cargo xtask build"
}

# label_changes ARCH LABEL...: the --change arguments of `docker import` for the architecture label and the
# --label KEY=VALUE arguments, in CHANGE_ARGS.
label_changes() {
    local arch=$1 p
    shift
    CHANGE_ARGS+=(--change "LABEL cluster-tests.architecture=\"$arch\"")
    for p in "$@"; do
        [[ $p == cluster-tests.*=* && $p != *'"'* ]] || die "--label $p: expected cluster-tests.KEY=VALUE"
        CHANGE_ARGS+=(--change "LABEL ${p%%=*}=\"${p#*=}\"")
    done
}

# assemble_tools TAG SUITE ARCH HOST_ARCH BIN...: steps 2 and 3 of the tools image: BIN... (a symlink is kept
# and followed), the shared objects they load (resolved by the suite's loader, as for node images), iptables'
# extension modules, a root-only /etc/passwd, /tmp; smoke-tests each binary, then imports the tree as TAG with
# label cluster-tests.image=tools (and the --label ones, in LABELS).
assemble_tools() {
    local tag=$1 suite=$2 arch=$3 host_arch=$4 bin extdir="" p
    shift 4
    step 2 "assembling a minimal root filesystem: $* and their libraries"
    mkdir -p -- "$OUT/etc" "$OUT/tmp"
    chmod 1777 "$OUT/tmp"
    local -a objects=() dynamic=() statics=()
    INTERP=""
    for bin in "$@"; do
        [[ -e $ROOT$bin || -L $ROOT$bin ]] || die "$bin is not in the unpacked packages of $suite"
        copy_path "$bin"
        objects+=("$COPIED")
        p=$(elf_interpreter "$ROOT$COPIED")
        if [[ -n $p ]]; then
            dynamic+=("$COPIED")
            [[ -n $INTERP ]] || INTERP=$p
        else
            statics+=("$bin") # busybox: no interpreter, no libraries
        fi
    done
    [[ -n $INTERP ]] || die "none of $* is a dynamically linked ELF binary"
    LOADER=$(in_root "$INTERP")
    [[ -f $ROOT$LOADER ]] || die "the dynamic loader $INTERP is not in the unpacked packages"
    TRIPLET=${LOADER%/*}
    TRIPLET=${TRIPLET##*/}
    if [[ $arch != "$host_arch" ]] && ! "$ROOT$LOADER" --help >/dev/null 2>&1; then
        die "this $host_arch host cannot run $arch binaries (no binfmt emulation, e.g. package qemu-user-binfmt); build for $host_arch"
    fi
    # iptables loads its matches and targets (libxt_owner.so, libxt_statistic.so, ...) with dlopen.
    extdir=$(find "$ROOT/usr/lib" -maxdepth 2 -type d -name xtables | head -n1)
    if [[ -n $extdir ]]; then
        for p in "$extdir"/*.so; do
            [[ -e $p ]] && dynamic+=("${p#"$ROOT"}")
        done
    fi
    local -a libs=()
    needed_objects "${dynamic[@]}" >"$WORK/libs" || exit 1
    mapfile -t libs <"$WORK/libs"
    for p in "${libs[@]}" "${dynamic[@]}"; do
        copy_path "$p"
    done
    printf '%s\n' 'root:x:0:0:root:/root:/nonexistent' >"$OUT/etc/passwd"
    printf '%s\n' 'root:x:0:' >"$OUT/etc/group"
    # Smoke test: each binary starts in the minimal tree (through the suite's loader; a static one directly).
    for bin in "$@"; do
        if [[ " ${statics[*]} " == *" $bin "* ]]; then
            if [[ $arch == "$host_arch" ]]; then
                "$OUT$bin" true >/dev/null 2>&1 || die "$bin does not run"
            fi
        else
            run_in "$OUT" "$bin" --version >/dev/null 2>&1 || run_in "$OUT" "$bin" -V >/dev/null 2>&1 ||
                die "$bin does not run in the minimal root filesystem"
        fi
    done
    local size id
    size=$(du -sm -- "$OUT" | cut -f1)
    step 3 "importing the fault tools (${size} MB, ${#libs[@]} shared objects) as $tag"
    tar --create --file "$WORK/rootfs.tar" --directory "$OUT" --numeric-owner --owner=0 --group=0 --sort=name .
    CHANGE_ARGS=(--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'LABEL cluster-tests.image=tools')
    label_changes "$arch" "${LABELS[@]}"
    if [[ $arch != "$host_arch" ]]; then
        CHANGE_ARGS+=(--platform "linux/$arch")
    fi
    id=$(docker import "${CHANGE_ARGS[@]}" --message "cluster-tests fault tools from Debian $suite" \
        "$WORK/rootfs.tar" "$tag" </dev/null) || die "docker import of $tag failed"
    printf 'built %s: fault tools from Debian %s, %s (%.12s)\n' "$tag" "$suite" "$arch" "${id#sha256:}" >&2
}

main() {
    local tag="" suite="" server_bin="" cli_bin="" insecure=0 arch="" tools=0
    local -a extra_suites=() packages=() labels=() bins=()
    while (($#)); do
        case $1 in
            --tag) tag=${2-}; shift 2 || die "--tag needs a value" ;;
            --suite) suite=${2-}; shift 2 || die "--suite needs a value" ;;
            --extra-suite) extra_suites+=("${2-}"); shift 2 || die "--extra-suite needs a value" ;;
            --insecure-release-date) insecure=1; shift ;;
            --server-bin) server_bin=${2-}; shift 2 || die "--server-bin needs a value" ;;
            --cli-bin) cli_bin=${2-}; shift 2 || die "--cli-bin needs a value" ;;
            --arch) arch=${2-}; shift 2 || die "--arch needs a value" ;;
            --label) labels+=("${2-}"); shift 2 || die "--label needs a value" ;;
            --tools) tools=1; shift ;;
            --bin) bins+=("${2-}"); shift 2 || die "--bin needs a value" ;;
            -h | --help) usage; exit 0 ;;
            --) shift; packages=("$@"); break ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    [[ -n $tag ]] || { usage >&2; die "--tag is required"; }
    [[ -n $suite ]] || { usage >&2; die "--suite is required"; }
    if ((tools)); then
        ((${#bins[@]})) || { usage >&2; die "--tools needs at least one --bin"; }
        for p in "${bins[@]}"; do
            [[ $p == /* ]] || { usage >&2; die "--bin $p must be an absolute path inside the image"; }
        done
    else
        [[ $server_bin == /* ]] || { usage >&2; die "--server-bin must be an absolute path inside the image"; }
        [[ $cli_bin == /* ]] || { usage >&2; die "--cli-bin must be an absolute path inside the image"; }
    fi
    ((${#packages[@]})) || { usage >&2; die "no packages given after --"; }

    command -v mmdebstrap >/dev/null ||
        die "mmdebstrap is not installed; install it with: apt-get install -y mmdebstrap"
    command -v docker >/dev/null || die "docker (the client) is not installed"
    local host_arch mode
    host_arch=$(dpkg --print-architecture 2>/dev/null) || die "dpkg is missing (mmdebstrap needs it)"
    arch=${arch:-$host_arch}
    mode=$(build_mode) || exit 1
    local docker_err
    docker_err=$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null) ||
        die "the Docker engine is not reachable: $docker_err"

    trap cleanup EXIT
    trap 'printf "%s: interrupted (SIGHUP)\n" "$PROG" >&2; exit 129' HUP
    trap 'printf "%s: interrupted (SIGINT)\n" "$PROG" >&2; exit 130' INT
    trap 'printf "%s: interrupted (SIGTERM)\n" "$PROG" >&2; exit 143' TERM
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/node-image.XXXXXXXX")
    chmod 0755 "$WORK" # lets apt download as _apt (its sandbox)
    ROOT=$WORK/unpacked
    OUT=$WORK/rootfs

    # --- 1. unpack the packages --------------------------------------------------------------------------
    local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    local -a sources=() includes=()
    if ((insecure)); then
        sources+=("deb [check-valid-until=no] $mirror $suite main")
    else
        sources+=("deb $mirror $suite main")
    fi
    local s p
    for s in "${extra_suites[@]}"; do
        sources+=("deb $mirror $s main")
    done
    for p in "${packages[@]}"; do
        includes+=("--include=,$p")
    done
    local what="$suite ($arch, mmdebstrap $mode mode)"
    if ((insecure)); then what+=" (its Release file's expiry date unchecked)"; fi
    if ((${#extra_suites[@]})); then what+=" + ${extra_suites[*]}"; fi
    step 1 "bootstrapping $what with ${packages[*]}"
    # - variant "extract": only unpack the packages and their dependencies (no Essential set, no dpkg
    #   configure, no maintainer scripts, no chroot mounts): ~5 s, against ~12 s for "essential".
    # - no --dpkgopt=path-exclude=...: in this variant mmdebstrap then pipes every .deb through mmtarfilter,
    #   which doubles the time, and docs/man pages/locales never reach the image anyway.
    # - the setup hook makes /bin, /sbin, /lib and /lib64 links into /usr (merged /usr): since trixie the
    #   packages ship files under /usr only and base-files, which makes the links, is not unpacked; without
    #   them the ELF interpreter /lib64/ld-linux-x86-64.so.2 would be missing.
    # - skipped: signed-by detection (apt verifies with the host's keyring), removal of apt's lists and
    #   cache (the whole tree is deleted), device nodes in /dev (unused).
    # Runs in the background so that a signal to this script ends the build at once (see cleanup).
    # shellcheck disable=SC2016 # the hook's $1 (the root directory) is for the shell mmdebstrap runs it with
    # Unshare mode writes a tar file (a directory would belong to the namespace's ids, not this user's);
    # root and fakechroot write the directory itself.
    local target=$ROOT
    [[ $mode == unshare ]] && target=$WORK/unpacked.tar
    mmdebstrap --mode="$mode" --variant=extract --architectures="$arch" \
        --format="$([[ $mode == unshare ]] && echo tar || echo directory)" \
        --aptopt='Acquire::Languages "none"' \
        --setup-hook='for d in bin sbin lib lib64; do mkdir -p "$1/usr/$d"; [ -e "$1/$d" ] || ln -s "usr/$d" "$1/$d"; done' \
        --skip=check/signed-by --skip=output/dev $([[ $mode == unshare ]] || echo --skip=cleanup) \
        "${includes[@]}" "$suite" "$target" "${sources[@]}" \
        </dev/null >"$WORK/mmdebstrap.log" 2>&1 &
    CHILD=$!
    if ! wait "$CHILD"; then
        CHILD=""
        tail -n 25 "$WORK/mmdebstrap.log" >&2
        die "mmdebstrap failed to bootstrap $suite with ${packages[*]} (its last output is above)"
    fi
    CHILD=""
    if [[ $mode == unshare ]]; then
        mkdir -p -- "$ROOT"
        tar --extract --file "$target" --directory "$ROOT" --no-same-owner --no-same-permissions \
            --exclude=./dev --exclude=./var --exclude=./usr/share/doc --exclude=./usr/share/man ||
            die "unpacking mmdebstrap's tar file failed"
        rm -f -- "$target"
    fi

    if ((tools)); then
        LABELS=("${labels[@]}")
        assemble_tools "$tag" "$suite" "$arch" "$host_arch" "${bins[@]}"
        return
    fi

    # --- 2. assemble the minimal root filesystem ---------------------------------------------------------
    step 2 "assembling a minimal root filesystem: $server_bin, $cli_bin and their libraries"
    local bin
    for bin in "$server_bin" "$cli_bin"; do
        [[ -e $ROOT$bin || -L $ROOT$bin ]] || die "$bin is not in packages ${packages[*]} of $suite"
    done
    mkdir -p -- "$OUT"
    copy_path "$cli_bin"
    copy_path "$server_bin"
    INTERP=$(elf_interpreter "$ROOT$COPIED")
    [[ -n $INTERP ]] || die "$server_bin has no ELF program interpreter (is it a dynamically linked ELF binary?)"
    LOADER=$(in_root "$INTERP")
    [[ -f $ROOT$LOADER ]] || die "the dynamic loader $INTERP is not in the unpacked packages"
    TRIPLET=${LOADER%/*}
    TRIPLET=${TRIPLET##*/}
    if [[ $arch != "$host_arch" ]] && ! "$ROOT$LOADER" --help >/dev/null 2>&1; then
        die "this $host_arch host cannot run $arch binaries (no binfmt emulation, e.g. package qemu-user-binfmt); build for $host_arch"
    fi
    # Shared objects loaded with dlopen() at run time, which the loader's listing cannot show:
    # - glibc before 2.34 (bullseye): the NSS modules for name lookups (`redis-cli -h HOST` needs them);
    # - libgcc_s, which glibc loads to unwind the stack for the backtrace of a crash report;
    # - the Lua C modules of the system Lua, if the server links it: Debian's Redis 6 runs
    #   `require('cjson')` (and bit) at startup, and scripts cannot use cjson without it.
    local libc libdir extra lib luadir
    local -a libs objects=("$server_bin" "$cli_bin")
    needed_objects "$server_bin" "$cli_bin" >"$WORK/libs" || exit 1
    mapfile -t libs <"$WORK/libs"
    libc=$(printf '%s\n' "${libs[@]}" | grep -m1 '/libc\.so\.' || true)
    [[ -n $libc ]] || die "$server_bin does not link the C library?"
    libdir=${libc%/*}
    for extra in libnss_files.so.2 libnss_dns.so.2 libgcc_s.so.1; do
        if [[ -e $ROOT$libdir/$extra || -L $ROOT$libdir/$extra ]]; then
            objects+=("$libdir/$extra")
        fi
    done
    for lib in "${libs[@]}"; do
        [[ $lib =~ /liblua(5\.[0-9])\.so ]] || continue
        luadir=${lib%/*}/lua/${BASH_REMATCH[1]}
        for extra in "$ROOT$luadir"/*.so; do
            if [[ -e $extra ]]; then
                objects+=("${extra#"$ROOT"}")
            fi
        done
    done
    needed_objects "${objects[@]}" >"$WORK/libs" || exit 1
    mapfile -t libs <"$WORK/libs"
    for p in "${libs[@]}" "${objects[@]:2}"; do
        copy_path "$p"
    done
    mkdir -p -- "$OUT/etc" "$OUT/data" "$OUT/tmp"
    chmod 0777 "$OUT/data"
    chmod 1777 "$OUT/tmp"
    printf '%s\n' 'root:x:0:0:root:/root:/nonexistent' 'nobody:x:65534:65534:nobody:/nonexistent:/nonexistent' \
        >"$OUT/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$OUT/etc/group"
    printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' >"$OUT/etc/nsswitch.conf"

    # Smoke test before importing: both binaries start in the minimal tree.
    local version_line server_name server_version
    version_line=$(run_in "$OUT" "$server_bin" --version 2>&1) ||
        die "$server_bin --version fails in the minimal root filesystem: $version_line"
    run_in "$OUT" "$cli_bin" --version >/dev/null 2>&1 ||
        die "$cli_bin --version fails in the minimal root filesystem: $(run_in "$OUT" "$cli_bin" --version 2>&1)"
    # "Redis server v=7.0.15 sha=..." / "Valkey server v=8.0.1 sha=..."
    server_name=${version_line%% *}
    server_version=$(sed -n 's/.* v=\([^ ]*\).*/\1/p' <<<"$version_line")
    [[ -n $server_name && -n $server_version ]] || die "unexpected output of $server_bin --version: $version_line"
    local size
    size=$(du -sm -- "$OUT" | cut -f1)

    # --- 3. import -------------------------------------------------------------------------------------
    step 3 "importing $server_name $server_version (${size} MB, ${#libs[@]} shared objects) as $tag"
    # A complete tar file, not a pipe: a failure half-way must not hand docker a truncated tree.
    tar --create --file "$WORK/rootfs.tar" --directory "$OUT" --numeric-owner --owner=0 --group=0 --sort=name .
    local -a changes=(
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        'WORKDIR /data'
        "ENTRYPOINT [\"$server_bin\"]"
        'LABEL cluster-tests.image=node'
        "LABEL cluster-tests.server=\"$server_name $server_version\""
        "LABEL cluster-tests.server-name=\"$server_name\""
        "LABEL cluster-tests.server-version=\"$server_version\""
        "LABEL cluster-tests.server-bin=\"$server_bin\""
        "LABEL cluster-tests.cli-bin=\"$cli_bin\""
        "LABEL cluster-tests.debian-suite=\"$suite\""
        "LABEL cluster-tests.packages=\"${packages[*]}\""
        "LABEL cluster-tests.architecture=\"$arch\""
    )
    for p in "${labels[@]}"; do
        [[ $p == cluster-tests.*=* && $p != *'"'* ]] || die "--label $p: expected cluster-tests.KEY=VALUE"
        changes+=("LABEL ${p%%=*}=\"${p#*=}\"")
    done
    local -a change_args=()
    for p in "${changes[@]}"; do
        change_args+=(--change "$p")
    done
    local id
    if [[ $arch != "$host_arch" ]]; then
        change_args+=(--platform "linux/$arch")
    fi
    id=$(docker import "${change_args[@]}" --message "cluster-tests node image: $server_name $server_version from Debian $suite" \
        "$WORK/rootfs.tar" "$tag" </dev/null) || die "docker import of $tag failed"
    printf 'built %s: %s %s from Debian %s, %s (%.12s)\n' "$tag" "$server_name" "$server_version" "$suite" "$arch" "${id#sha256:}" >&2
}

main "$@" </dev/null
