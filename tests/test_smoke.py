"""The public API imports and the CLI runs."""

import hambias


def test_public_api_and_version():
    assert hambias.__version__
    for name in hambias.__all__:
        assert hasattr(hambias, name), name


def test_cli_check_runs(tmp_path):
    from hambias.cli import main

    assert main(["check", "--quick", "--only", "uncertainties", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").exists() and (tmp_path / "report.json").exists()


def test_cli_check_rejects_unknown_name(tmp_path, capsys):
    from hambias.cli import main

    assert main(["check", "--only", "no_such_check", "--out", str(tmp_path)]) == 2
    assert "no_such_check" in capsys.readouterr().err
