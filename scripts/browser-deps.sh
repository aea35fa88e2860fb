# Sourced by the browser test scripts: install what they need when it is missing (Debian's
# chromium, nodejs and npm, plus the packages given as arguments, e.g. openssl; then
# playwright-core into chat-web/browser). Never skip for want of a dependency: install, or fail.
ensure_browser_deps() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v node > /dev/null || missing+=(nodejs)
    command -v npm > /dev/null || missing+=(npm)
    local tool
    for tool in "$@"; do
        command -v "$tool" > /dev/null || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get -o DPkg::Lock::Timeout=300 update -q
        $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
    fi
    if [ ! -d chat-web/browser/node_modules/playwright-core ]; then
        (cd chat-web/browser && npm ci --no-audit --no-fund)
    fi
}
