"""``python -m nabiya``: the same as the ``nabiya`` command."""

try:
    from nabiya.cli import console_main
except KeyboardInterrupt:  # Ctrl-C while starting: one line, as at any other moment
    import sys

    print("nabiya: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

console_main()
