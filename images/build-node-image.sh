#!/usr/bin/env bash
# Builds a minimal Redis/Valkey node image (or the fault tools image) from Debian packages, without any
# container registry.
#
#   build-node-image.sh --tag TAG --suite SUITE [--extra-suite SUITE]... [--insecure-release-date] \
#                       --server-bin PATH --cli-bin PATH -- PACKAGE...
#   build-node-image.sh --tools --tag TAG --suite SUITE --bin PATH [--bin PATH]... -- PACKAGE...
#
# --tools makes the image the fault commands run in (iptables, tc, a static busybox for `sh -c`): the same
# steps, with the listed binaries instead of a server and its cli, iptables' extension modules (loaded with
# dlopen, so the loader's listing cannot show them), label cluster-tests.image=tools and no entry point.
#
# 1. mmdebstrap unpacks PACKAGE... and their dependencies (variant "extract": nothing is configured, no
#    maintainer script runs) from SUITE (plus the extra suites, e.g. backports) into a temporary directory.
# 2. A minimal root filesystem is assembled from it: the server and cli binaries, every shared object they
#    load (found by the suite's own dynamic loader, run in a chroot), the symlinks on the way, /etc/passwd,
#    /etc/group, /etc/nsswitch.conf, an empty /data and /tmp. No shell, no package manager, no docs.
# 3. The tree is imported with `docker import` (atomic: TAG appears only once the image is complete), with
#    WORKDIR /data and the server binary as ENTRYPOINT, so `docker run TAG --port 7001 ...` starts a server.
#
# --insecure-release-date lets apt accept an expired Release file (past Valid-Until) for SUITE only; the
# extra suites are still checked. The version matrix that drives this script is images/versions.toml.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), TMPDIR. Needs root, mmdebstrap, docker.
# The script may be fed on stdin (`bash -s -- ARGS < build-node-image.sh`): no command it runs reads stdin.

set -euo pipefail
umask 022

PROG=build-node-image.sh

usage() {
    cat <<EOF
usage: $PROG --tag TAG --suite SUITE [--extra-suite SUITE]... [--insecure-release-date]
       $(printf '%*s' ${#PROG} '') --server-bin PATH --cli-bin PATH -- PACKAGE...
       $PROG --tools --tag TAG --suite SUITE --bin PATH [--bin PATH]... -- PACKAGE...
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

# needed_objects INTERP FILE...: absolute paths (inside $ROOT) of the shared objects FILE... load, the
# loader included, as resolved by the suite's own loader.
needed_objects() {
    local interp=$1 file listing
    shift
    for file in "$@"; do
        listing=$(chroot "$ROOT" "$interp" --list "$file" 2>&1) || die "resolving the libraries of $file failed: $listing"
        if grep -q 'not found' <<<"$listing"; then
            die "$file needs libraries that no unpacked package provides:"$'\n'"$(grep 'not found' <<<"$listing")"
        fi
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; next } }' <<<"$listing"
    done | sort -u
}

# assemble_tools TAG SUITE BIN...: steps 2 and 3 of the tools image: BIN... (a symlink is kept and followed),
# the shared objects they load, iptables' extension modules, a root-only /etc/passwd, /tmp; smoke-tests each
# binary, then imports the tree as TAG with label cluster-tests.image=tools.
assemble_tools() {
    local tag=$1 suite=$2 bin interp="" extdir="" p
    shift 2
    step 2 "assembling a minimal root filesystem: $* and their libraries"
    mkdir -p -- "$OUT/etc" "$OUT/tmp"
    chmod 1777 "$OUT/tmp"
    local -a objects=()
    for bin in "$@"; do
        [[ -e $ROOT$bin || -L $ROOT$bin ]] || die "$bin is not in the unpacked packages of $suite"
        copy_path "$bin"
        objects+=("$COPIED")
        [[ -n $interp ]] || interp=$(elf_interpreter "$ROOT$COPIED")
    done
    [[ -n $interp ]] || die "none of $* is a dynamically linked ELF binary"
    # iptables loads its matches and targets (libxt_owner.so, libxt_statistic.so, ...) with dlopen.
    extdir=$(find "$ROOT/usr/lib" -maxdepth 2 -type d -name xtables | head -n1)
    if [[ -n $extdir ]]; then
        for p in "$extdir"/*.so; do
            objects+=("${p#"$ROOT"}")
        done
    fi
    local -a libs=()
    # A static binary (busybox) has no interpreter and no libraries: list only the dynamic ones.
    local -a dynamic=()
    for p in "${objects[@]}"; do
        if [[ -n $(elf_interpreter "$ROOT$p") || $p == *.so ]]; then dynamic+=("$p"); fi
    done
    needed_objects "$interp" "${dynamic[@]}" >"$WORK/libs" || exit 1
    mapfile -t libs <"$WORK/libs"
    for p in "${libs[@]}" "${objects[@]}"; do
        copy_path "$p"
    done
    printf '%s\n' 'root:x:0:0:root:/root:/nonexistent' >"$OUT/etc/passwd"
    printf '%s\n' 'root:x:0:' >"$OUT/etc/group"
    for bin in "$@"; do
        chroot "$OUT" "$bin" --version >/dev/null 2>&1 || chroot "$OUT" "$bin" -V >/dev/null 2>&1 ||
            chroot "$OUT" "$bin" true >/dev/null 2>&1 || die "$bin does not run in the minimal root filesystem"
    done
    local size id
    size=$(du -sm -- "$OUT" | cut -f1)
    step 3 "importing the fault tools (${size} MB, ${#libs[@]} shared objects) as $tag"
    tar --create --file "$WORK/rootfs.tar" --directory "$OUT" --numeric-owner --owner=0 --group=0 --sort=name .
    id=$(docker import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'LABEL cluster-tests.image=tools' \
        --message "cluster-tests fault tools from Debian $suite" "$WORK/rootfs.tar" "$tag" </dev/null) ||
        die "docker import of $tag failed"
    printf 'built %s: fault tools from Debian %s (%.12s)\n' "$tag" "$suite" "${id#sha256:}" >&2
}

main() {
    local tag="" suite="" server_bin="" cli_bin="" insecure=0 tools=0
    local -a extra_suites=() packages=() bins=()
    while (($#)); do
        case $1 in
            --tag) tag=${2-}; shift 2 || die "--tag needs a value" ;;
            --suite) suite=${2-}; shift 2 || die "--suite needs a value" ;;
            --extra-suite) extra_suites+=("${2-}"); shift 2 || die "--extra-suite needs a value" ;;
            --insecure-release-date) insecure=1; shift ;;
            --server-bin) server_bin=${2-}; shift 2 || die "--server-bin needs a value" ;;
            --cli-bin) cli_bin=${2-}; shift 2 || die "--cli-bin needs a value" ;;
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
    [[ $(id -u) == 0 ]] || die "must run as root (mmdebstrap unpacks root-owned files, and chroot needs root)"
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
    local what="$suite"
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
    mmdebstrap --mode=root --variant=extract --format=directory \
        --aptopt='Acquire::Languages "none"' \
        --setup-hook='for d in bin sbin lib lib64; do mkdir -p "$1/usr/$d"; [ -e "$1/$d" ] || ln -s "usr/$d" "$1/$d"; done' \
        --skip=check/signed-by --skip=cleanup --skip=output/dev \
        "${includes[@]}" "$suite" "$ROOT" "${sources[@]}" \
        </dev/null >"$WORK/mmdebstrap.log" 2>&1 &
    CHILD=$!
    if ! wait "$CHILD"; then
        CHILD=""
        tail -n 25 "$WORK/mmdebstrap.log" >&2
        die "mmdebstrap failed to bootstrap $suite with ${packages[*]} (its last output is above)"
    fi
    CHILD=""

    if ((tools)); then
        assemble_tools "$tag" "$suite" "${bins[@]}"
        return
    fi

    # --- 2. assemble the minimal root filesystem ---------------------------------------------------------
    step 2 "assembling a minimal root filesystem: $server_bin, $cli_bin and their libraries"
    local bin
    for bin in "$server_bin" "$cli_bin"; do
        [[ -e $ROOT$bin || -L $ROOT$bin ]] || die "$bin is not in packages ${packages[*]} of $suite"
    done
    local interp
    mkdir -p -- "$OUT"
    copy_path "$cli_bin"
    copy_path "$server_bin"
    interp=$(elf_interpreter "$ROOT$COPIED")
    [[ -n $interp ]] || die "$server_bin has no ELF program interpreter (is it a dynamically linked ELF binary?)"
    # Shared objects loaded with dlopen() at run time, which the loader's listing cannot show:
    # - glibc before 2.34 (bullseye): the NSS modules for name lookups (`redis-cli -h HOST` needs them);
    # - libgcc_s, which glibc loads to unwind the stack for the backtrace of a crash report;
    # - the Lua C modules of the system Lua, if the server links it: Debian's Redis 6 runs
    #   `require('cjson')` (and bit) at startup, and scripts cannot use cjson without it.
    local libc libdir extra lib luadir
    local -a libs objects=("$server_bin" "$cli_bin")
    needed_objects "$interp" "$server_bin" "$cli_bin" >"$WORK/libs" || exit 1
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
    needed_objects "$interp" "${objects[@]}" >"$WORK/libs" || exit 1
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
    version_line=$(chroot "$OUT" "$server_bin" --version 2>&1) ||
        die "$server_bin --version fails in the minimal root filesystem: $version_line"
    chroot "$OUT" "$cli_bin" --version >/dev/null 2>&1 ||
        die "$cli_bin --version fails in the minimal root filesystem: $(chroot "$OUT" "$cli_bin" --version 2>&1)"
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
    )
    local -a change_args=()
    for p in "${changes[@]}"; do
        change_args+=(--change "$p")
    done
    local id
    id=$(docker import "${change_args[@]}" --message "cluster-tests node image: $server_name $server_version from Debian $suite" \
        "$WORK/rootfs.tar" "$tag" </dev/null) || die "docker import of $tag failed"
    printf 'built %s: %s %s from Debian %s (%.12s)\n' "$tag" "$server_name" "$server_version" "$suite" "${id#sha256:}" >&2
}

main "$@" </dev/null
