import sys


def _run(argv: list[str]) -> int:
    # `download` is a subcommand; every other invocation is the one-question CLI, unchanged.
    if argv[:1] == ["download"]:
        from .download import main as download_main

        return download_main(argv[1:])
    from .cli import main

    return main(argv)


sys.exit(_run(sys.argv[1:]))
