"""The image itself (labels, user, size, contents) and ``podioc build``'s behaviour."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from docker_support import REPO, SESSION, TEST_LABEL, podioc_cli

from podioc import __version__
from podioc.deploy.buildcontext import BuildOptions, assemble_context, check_ioc_dirs
from podioc.deploy.engine import ImageBuildError, PythonTarget
from podioc.deploy.image import BuildEvent, added_size, parse_stream
from podioc.deploy.source import framework_source
from podioc.deploy.wheels import make_wheelhouse

#: What podioc adds on top of the base image (numpy, p4p, caproto, podioc, the demo).
MAX_ADDED_BYTES = 150 * 1000 * 1000


@pytest.mark.docker
def test_image_metadata(engine: Any, test_image: str, base_image: str) -> None:
    config = engine.images.get(test_image).attrs["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"]
    assert labels["org.opencontainers.image.description"]
    assert "org.opencontainers.image.source" in labels
    assert labels["org.opencontainers.image.base.name"] == base_image
    assert labels[f"{TEST_LABEL}.build"] == SESSION
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["podioc"]
    assert config["Healthcheck"]["Test"][:3] == ["CMD", "podioc", "probe"]
    assert set(config["Volumes"]) == {"/tmp", "/var/lib/podioc/autosave"}
    assert "PODIOC_AUTOSAVE_DIR=/var/lib/podioc/autosave" in config["Env"]


@pytest.mark.docker
def test_added_layers_stay_small(engine: Any, test_image: str, base_image: str) -> None:
    added = added_size(engine, test_image, base_image)
    print(f"podioc adds {added / 1e6:.1f} MB to {base_image}")
    assert 0 < added <= MAX_ADDED_BYTES


@pytest.mark.docker
def test_runtime_has_no_compilers_and_serves_the_demo_path(engine: Any, test_image: str) -> None:
    script = ("for c in gcc cc c++ g++ clang make ld pip pip3; do command -v $c; done; "
              "test -f /iocs/demo/demo.yaml && test -f /iocs/demo/__pycache__/ioc.*.pyc "
              "&& podioc --version")
    out = engine.containers.run(test_image, ["-c", script], entrypoint=["sh"], remove=True,
                                network_mode="none", labels={TEST_LABEL: SESSION})
    assert out.decode().strip() == f"podioc, version {__version__}"


@pytest.mark.docker
def test_failing_build_shows_the_failing_step(engine: Any, test_image: str, base_image: str,
                                              tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ioc.py").write_text("from podioc import IOC\n\nclass Broken(IOC:\n    pass\n")
    (broken / "broken.yaml").write_text("ioc: ioc.py:Broken\nprefix: 'B:'\n")
    tag = f"podioc-test-broken:{uuid.uuid4().hex[:8]}"
    proc = podioc_cli("build", str(broken), "--tag", tag, "--base-image", base_image,
                      "--quiet", "--label", f"{TEST_LABEL}.build={SESSION}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "build step failed: RUN" in proc.stderr
    assert "compileall" in proc.stderr
    assert "SyntaxError" in proc.stderr and "broken/ioc.py" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not engine.images.list(name=tag.split(":")[0])


@pytest.mark.docker
def test_build_refuses_a_missing_base_image(engine: Any) -> None:
    # A registry on a closed loopback port: the pull fails at once, nothing leaves the host.
    missing = f"127.0.0.1:9/podioc-test-missing-{uuid.uuid4().hex[:8]}:none"
    proc = podioc_cli("build", "iocs/demo", "--tag", "podioc-test-never:x", "--base-image",
                      missing, "--quiet")
    assert proc.returncode == 1
    assert "is not in the local image store" in proc.stderr


# --- no engine needed ----------------------------------------------------------------


def test_no_engine_gives_a_clear_error(tmp_path: Path) -> None:
    sock = tmp_path / "no-engine.sock"
    for args in (("ps",), ("build", "iocs/demo", "--quiet"), ("down", "--all")):
        proc = podioc_cli(*args, env={"DOCKER_HOST": f"unix://{sock}"}, timeout=60)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "no Docker engine answered" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_build_stream_error_carries_step_output() -> None:
    chunks: list[dict[str, Any]] = [
        {"stream": "Step 1/3 : FROM base\n"}, {"stream": " ---> abc\n"},
        {"stream": "Step 2/3 : RUN make\n"}, {"stream": " ---> Running in 123\n"},
        {"stream": "compiling...\nerror: "}, {"stream": "boom\n"},
        {"error": "The command '/bin/sh -c make' returned a non-zero code: 2",
         "errorDetail": {"code": 2, "message": "returned a non-zero code: 2"}},
    ]
    events = []
    with pytest.raises(ImageBuildError) as info:
        for event in parse_stream(chunks):
            events.append(event)
    assert [(e.kind, e.step) for e in events if e.kind == "step"] == [("step", 1), ("step", 2)]
    assert info.value.step == "RUN make"
    assert info.value.output == ["compiling...", "error: boom"]
    assert "non-zero code: 2" in str(info.value)


def test_build_stream_success_gives_image_id() -> None:
    chunks: list[dict[str, Any]] = [
        {"stream": "Step 1/1 : FROM base\n"}, {"aux": {"ID": "sha256:feed"}},
        {"stream": "Successfully built feed\n"}]
    events = list(parse_stream(chunks))
    assert events[-1] == BuildEvent("done", "sha256:feed")


def test_wheel_platforms_follow_the_c_library() -> None:
    glibc = PythonTarget("3.12", "x86_64", "glibc", "2.36")
    tags = glibc.platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux2014_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags
    assert glibc.key == "cp312-x86_64-glibc2.36"
    old = PythonTarget("3.11", "aarch64", "glibc", "2.17").platforms()
    assert "manylinux2014_aarch64" in old and "manylinux_2_28_aarch64" not in old
    musl = PythonTarget("3.12", "x86_64", "musl", "0").platforms()
    assert musl[0] == "musllinux_1_2_x86_64"


def test_context_mirrors_the_source_tree(tmp_path: Path) -> None:
    source = framework_source()
    assert source.from_checkout
    assert source.dockerfile == (REPO / "Dockerfile").read_text()
    opts = BuildOptions(ioc_dirs=(REPO / "iocs" / "demo",))
    ctx = assemble_context(opts, tmp_path / "ctx", source)
    for path in ("Dockerfile", "pyproject.toml", "README.md", "framework/podioc/__init__.py",
                 "iocs/demo/demo.yaml", "iocs/demo/ioc.py", "wheels"):
        assert (ctx / path).exists(), path
    assert not list(ctx.rglob("__pycache__"))


def test_ioc_dir_names_must_be_unique(tmp_path: Path) -> None:
    for parent in ("a", "b"):
        (tmp_path / parent / "heater").mkdir(parents=True)
        (tmp_path / parent / "heater" / "ioc.py").write_text("")
    with pytest.raises(ImageBuildError, match="would both become /iocs/heater"):
        check_ioc_dirs([tmp_path / "a" / "heater", tmp_path / "b" / "heater"])


def test_wheelhouse_keeps_only_the_wheels_pip_chose(tmp_path: Path) -> None:
    import subprocess

    for name in ("numpy-1.0-cp312-none-any.whl", "numpy-2.0-cp312-none-any.whl"):
        (tmp_path / name).write_text("")
    seen: list[list[str]] = []

    def fake_pip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        out = (f"File was already downloaded {tmp_path}/numpy-2.0-cp312-none-any.whl\n"
               "Successfully downloaded numpy\n")
        return subprocess.CompletedProcess(cmd, 0, out, "")

    target = PythonTarget("3.12", "x86_64", "glibc", "2.36")
    wheels = make_wheelhouse(target, tmp_path, ["numpy<3"], runner=fake_pip)
    assert wheels == [tmp_path / "numpy-2.0-cp312-none-any.whl"]
    cmd = seen[0]
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in cmd and "manylinux_2_36_x86_64" in cmd

    def failing_pip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n")

    with pytest.raises(ImageBuildError, match="--no-wheelhouse") as info:
        make_wheelhouse(target, tmp_path, ["numpy<1"], runner=failing_pip)
    assert info.value.output == ["ERROR: No matching distribution"]
