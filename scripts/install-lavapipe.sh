#!/usr/bin/env bash
# Makes sure Mesa's software Vulkan driver (lavapipe) and the Vulkan loader are present,
# installing them from Debian's packages where they are not: the tests run on it, on any
# machine, GPU or not.
set -euo pipefail

# Whole output captured first: `grep -q` closing the pipe early would fail it under pipefail.
have_loader() { [[ "$(ldconfig -p 2>/dev/null)" == *libvulkan.so.1* ]]; }
have_driver() { compgen -G '/usr/share/vulkan/icd.d/lvp_icd.*.json' >/dev/null; }

if have_loader && have_driver; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "No Vulkan driver found and no apt-get to install one: install Mesa's lavapipe" \
         "(mesa-vulkan-drivers) and the Vulkan loader (libvulkan1) with your package manager." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "Installing Mesa's software Vulkan driver (lavapipe)..." >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    mesa-vulkan-drivers libvulkan1 >/dev/null
have_loader && have_driver
