#!/usr/bin/env bash
# Install what the PBX itself runs besides Python: espeak-ng, the speech synthesiser that gives
# a new company spoken menus (announcements generated from text). Never fails: without it the
# demo's menus are tones and the portal's "generate from text" says it is missing.
set -uo pipefail

if command -v espeak-ng >/dev/null 2>&1; then
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
    shout "espeak-ng is missing and cannot be installed (not root, no password-less sudo): menus will be tones until 'apt-get install espeak-ng'."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    shout "espeak-ng is missing and there is no apt-get here: install it to get spoken menus."
    exit 0
fi
echo "runtime tools: installing espeak-ng (speech for the menus)"
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get install -y --no-install-recommends espeak-ng ||
       { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends espeak-ng; }; }; then
    shout "apt-get could not install espeak-ng: menus will be tones until it is installed."
fi
exit 0
