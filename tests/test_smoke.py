"""The public API imports and the CLI runs."""

import hambias


def test_public_api_and_version():
    assert hambias.__version__
    for name in hambias.__all__:
        assert hasattr(hambias, name), name


def test_cli_check_runs():
    from hambias.cli import main

    assert main(["check", "--quick"]) == 0
