# Sourced by .ci scripts: require_tool COMMAND DEBIAN-PACKAGE
#
# Makes sure COMMAND is on the PATH: if it is not, installs the Debian package with
# apt-get (when running as root on a machine that has apt-get), and fails loudly if
# it still cannot be found. CI machines are fresh Debian-like systems; elsewhere,
# install the tool yourself.
require_tool() {
    local tool="$1" package="$2"
    if command -v "$tool" > /dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
        echo "ci: $tool is missing; apt-get install $package"
        if [ -z "${CI_APT_UPDATED:-}" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            CI_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" > /dev/null
    fi
    if ! command -v "$tool" > /dev/null 2>&1; then
        echo "ci: $tool is needed and could not be installed (Debian package $package;" \
             "apt-get needs root)" >&2
        exit 1
    fi
}
