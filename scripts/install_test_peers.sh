#!/usr/bin/env bash
# Install the SIP peers and the browser the integration and e2e tests drive, when missing.
# Never fails: without apt the tests that need a missing peer skip, and say so.
set -uo pipefail

declare -A package_of=(
    [sipp]=sip-tester
    [baresip]=baresip-core
    [linphonec]=linphone-cli
    [chromium]=chromium
    [redis-server]=redis-server
)

missing=()
for command in sipp baresip linphonec chromium redis-server; do
    command -v "$command" >/dev/null 2>&1 || missing+=("${package_of[$command]}")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "test peers: sipp, baresip, linphonec, chromium and redis-server are installed"
    exit 0
fi

shout() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! $*" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    shout "cannot install ${missing[*]}: not root and no password-less sudo. The tests that need them will SKIP."
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    shout "cannot install ${missing[*]}: no apt-get here. The tests that need them will SKIP."
    exit 0
fi

echo "test peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    echo "test peers: installed ${missing[*]}"
else
    shout "apt-get could not install ${missing[*]}. The tests that need them will SKIP."
fi
exit 0
