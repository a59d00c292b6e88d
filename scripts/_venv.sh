# Sourced by scripts/run and scripts/test: make sure .venv exists and has the project installed.
# Re-installs only when pyproject.toml changed (stamp file holds its hash).
ensure_venv() {
    local root py stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$root" || return 1
    if [ ! -x .venv/bin/python ]; then
        py="$(command -v python3.11 || true)"
        if [ -z "$py" ] && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            py="$(command -v python3)"
        fi
        if [ -z "$py" ]; then
            echo "ReelPulse needs Python 3.11 (python3.11 not found)" >&2
            return 1
        fi
        echo "==> creating .venv with $py"
        "$py" -m venv .venv || return 1
    fi
    stamp=.venv/.reelpulse-installed
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing ReelPulse and its dependencies into .venv"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' || return 1
        echo "$want" > "$stamp"
    fi
}
