#!/usr/bin/env bash
# Makes sure SwiftShader's Vulkan driver is present: Debian's chromium package ships it as
# an ICD. Prints the ICD file's path.
set -euo pipefail
icd=/usr/lib/chromium/vk_swiftshader_icd.json
if [ ! -f "$icd" ]; then
    if ! command -v apt-get >/dev/null; then
        echo "No SwiftShader Vulkan driver at $icd and no apt-get to install chromium, which ships it." >&2
        exit 1
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "Installing chromium for its SwiftShader Vulkan driver..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -f "$icd" ] || { echo "chromium installed no SwiftShader ICD at $icd" >&2; exit 1; }
echo "$icd"
