"""Image builds against a flaky mirror: the builder's retries, and a failed step read in one screen."""

from __future__ import annotations

import pytest

from lab.images import build, flaky

pytestmark = pytest.mark.unit

APT_FAILURE = """Get:1 http://deb.debian.org/debian trixie/main amd64 libpq5 amd64 17.6-0+deb13u1 [228 kB]
Err:2 http://deb.debian.org/debian trixie/main amd64 gcc-14 amd64 14.2.0-19
  Connection timed out [IP: 198.18.0.99 80]
E: Failed to fetch http://deb.debian.org/debian/pool/main/g/gcc-14/gcc-14_14.2.0-19_amd64.deb  Connection timed out
E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?
subprocess exited with status 100
panic: subprocess exited with status 100

goroutine 1 [running]:
main.main()
\t/build/buildah-1.28.2/cmd/buildah/main.go:108 +0x5a
github.com/containers/buildah/run.(*Executor).Run(0xc000123456)
\t/build/buildah-1.28.2/run_linux.go:1234 +0x1ff
exit status 2
"""


def test_a_failed_step_names_the_image_the_step_the_tool_and_what_to_do(tmp_path, monkeypatch):
    """buildah's Go trace is cut, apt's own lines stay, the fix is named: the whole message fits a screen."""
    fake = tmp_path / "bin" / "buildah"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat <<'EOF' >&2\n{APT_FAILURE}EOF\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    buildah = build.Buildah(tmp_path / "store")
    buildah.recipe_file = "lab/images/recipes/netbox/recipe.toml"
    with pytest.raises(build.BuildError) as exc:
        buildah("run", *flaky.env_args(), "ctr", "--", "/bin/sh", "-ec", "apt-get install gcc",
                what="image netboxcommunity/netbox:v4.7.3 (recipe netbox): step 2/9 run `apt-get install gcc`")
    text = str(exc.value)
    assert text.startswith("image netboxcommunity/netbox:v4.7.3 (recipe netbox): step 2/9 run `apt-get install gcc`: "
                           "buildah run exited 1")
    assert "E: Failed to fetch" in text and "goroutine" not in text and "main.go" not in text
    assert "(buildah: panic: subprocess exited with status 100 — its Go trace omitted)" in text
    assert text.splitlines()[-1].startswith("what to do: a download failed after its retries")
    assert len(text.splitlines()) <= 16


def test_a_step_that_fails_on_its_own_points_at_the_recipe():
    """No fetch error in the output: the hint names the recipe file."""
    assert flaky.what_to_do("E: Unable to locate package pythn3", "lab/images/recipes/x/recipe.toml") == (
        "what to do: the step itself failed: read the lines above and fix the step in lab/images/recipes/x/recipe.toml")


def test_apt_retries_live_only_while_a_step_runs(tmp_path):
    """The apt configuration is in the rootfs during the step and gone before the commit; pip's come by env."""
    (tmp_path / "etc/apt/apt.conf.d").mkdir(parents=True)
    with flaky.apt_retries(tmp_path):
        assert 'Acquire::Retries "5";' in (tmp_path / flaky.APT_CONF).read_text()
    assert not (tmp_path / flaky.APT_CONF).exists()
    with flaky.apt_retries(tmp_path / "scratch-rootfs"):
        pass
    assert flaky.env_args() == ["--env", "PIP_RETRIES=10", "--env", "PIP_TIMEOUT=60"]
