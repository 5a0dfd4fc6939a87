# Sourced by .ci scripts, to get what a step needs onto a fresh Debian-like CI machine:
# installed with apt-get when running as root, and a loud failure when that cannot be
# done. Elsewhere, install the tools yourself.

# apt_install PACKAGE WHAT: apt-get install PACKAGE, if root on a machine with apt-get
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
        echo "ci: $2 is missing; apt-get install $1"
        if [ -z "${CI_APT_UPDATED:-}" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            CI_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" > /dev/null
    fi
}

# require_tool COMMAND DEBIAN-PACKAGE: COMMAND on the PATH, or fail
require_tool() {
    local tool="$1" package="$2"
    if command -v "$tool" > /dev/null 2>&1; then
        return 0
    fi
    apt_install "$package" "$tool"
    if ! command -v "$tool" > /dev/null 2>&1; then
        echo "ci: $tool is needed and could not be installed (Debian package $package;" \
             "apt-get needs root)" >&2
        exit 1
    fi
}

# require_package DEBIAN-PACKAGE: on a Debian-like machine (dpkg), installs the package
# if it is missing (as root, with apt-get) or fails; elsewhere does nothing, and the
# step that needs the package must check what it provides.
require_package() {
    local package="$1"
    command -v dpkg > /dev/null 2>&1 || return 0
    dpkg -s "$package" > /dev/null 2>&1 && return 0
    apt_install "$package" "$package"
    if ! dpkg -s "$package" > /dev/null 2>&1; then
        echo "ci: the Debian package $package is needed and could not be installed" >&2
        exit 1
    fi
}
