from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0] == "```sh"
    demo, tests = lines[1], lines[2]
    assert "manage.py demo" in demo
    assert "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()
