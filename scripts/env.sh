# Sourced by the scripts: the driver installed, and a runtime directory for Mesa, which
# complains on every start where XDG_RUNTIME_DIR is unset.
bash "$(dirname "${BASH_SOURCE[0]}")/install-lavapipe.sh"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR="$(mktemp -d)"
    export XDG_RUNTIME_DIR
fi
