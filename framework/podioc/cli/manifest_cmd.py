"""``podioc manifest``: Kubernetes objects for IOC instances.

Importing this module registers the command on the ``podioc`` group.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .. import config as config_mod
from ..config import InstanceConfig
from ..config.ioc_class import load_class
from ..deploy import manifest_files, manifests
from ..deploy.settings import DeploySettings, load_settings
from ..diagnostics.describe import describe_instance
from ..diagnostics.screens import screen_files
from ..errors import ConfigError, PodiocError
from .common import cli, fail

_NAMESPACE_FILE = re.compile(r"^namespace-([a-z0-9-]+)\.yaml$")


def _load(target: str, prefix: str | None,
          overrides: dict[str, Any]) -> tuple[InstanceConfig, str, DeploySettings]:
    if not config_mod.is_config_path(target):
        raise ConfigError(target, "<target>", "is not an instance config",
                          "podioc manifest renders instance configs (instance.yaml)")
    cfg = config_mod.load(target)
    if prefix is not None:
        config_mod.parse({"ioc": cfg.ioc, "prefix": prefix}, "--prefix", cfg.base_dir)
        cfg = replace(cfg, prefix=prefix)
    return cfg, Path(target).read_text(), load_settings(cfg, overrides)


def _screens(cfg: InstanceConfig) -> dict[str, str]:
    """The instance's screen, as ``podioc screens`` writes it: {NAME.bob: XML}."""
    cls = load_class(cfg.ioc, cfg.base_dir, cfg.source)
    return screen_files([(cfg.name, describe_instance(cfg, cls))])


def _existing(root: Path) -> tuple[list[str], list[str]]:
    """Instance directories and namespaces already rendered into a kustomize root."""
    dirs = sorted(p.name for p in root.iterdir()
                  if p.is_dir() and p.name != "base" and (p / "kustomization.yaml").is_file()
                  ) if root.is_dir() else []
    base = root / "base"
    namespaces = sorted(m.group(1) for p in base.iterdir()
                        if (m := _NAMESPACE_FILE.match(p.name))) if base.is_dir() else []
    return dirs, namespaces


def _write(root: Path, files: dict[str, str], check: bool) -> list[str]:
    """Write files under root (or, with check, list the ones that differ)."""
    differ = []
    for rel, text in sorted(files.items()):
        path = root / rel
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        differ.append(str(path))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return differ


@cli.command()
@click.argument("targets", nargs=-1, required=True, envvar="PODIOC_TARGET")
@click.option("--prefix", envvar="PODIOC_PREFIX", show_envvar=True, default=None,
              help="PV prefix; overrides the instance config's prefix (one TARGET only).")
@click.option("--namespace", envvar="PODIOC_NAMESPACE", show_envvar=True, default=None,
              help="Kubernetes namespace [default: deploy.namespace, else podioc].")
@click.option("--image", envvar="PODIOC_IMAGE", show_envvar=True, default=None,
              help="Image holding the IOC code; NAME@sha256:DIGEST in production "
                   "[default: deploy.image, else podioc:VERSION].")
@click.option("--pull-policy", envvar="PODIOC_IMAGE_PULL_POLICY", show_envvar=True,
              type=click.Choice(["Always", "IfNotPresent", "Never"]), default=None,
              help="imagePullPolicy [default: IfNotPresent for a digest, Always for a tag].")
@click.option("--beamline", envvar="PODIOC_BEAMLINE", show_envvar=True, default=None,
              help="Beamline whose nodes (label and taint podioc.io/beamline=BEAMLINE) "
                   "run the IOC [default: deploy.beamline, else default].")
@click.option("--code-dir", envvar="PODIOC_CODE_DIR", show_envvar=True, default=None,
              help="Directory of the IOC code in the image "
                   "[default: deploy.code_dir, else /iocs/<config's directory name>/].")
@click.option("-o", "--output-dir", envvar="PODIOC_MANIFEST_DIR", show_envvar=True,
              type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write files into this directory instead of printing YAML.")
@click.option("--kustomize", is_flag=True, envvar="PODIOC_KUSTOMIZE", show_envvar=True,
              help="Lay out -o DIR as a kustomize root: base/ (namespaces), one directory "
                   "per instance, and a kustomization.yaml including them all.")
@click.option("--check", is_flag=True, envvar="PODIOC_MANIFEST_CHECK", show_envvar=True,
              help="Write nothing; exit 1 if the files in -o DIR differ from the rendering.")
@click.option("--screens", is_flag=True, envvar="PODIOC_MANIFEST_SCREENS", show_envvar=True,
              help="Also render each instance's Phoebus screen (podioc screens) into a "
                   "ConfigMap NAME-screens (label app.kubernetes.io/component=screens) for a "
                   "screen server to publish. Imports each IOC class.")
def manifest(targets: tuple[str, ...], prefix: str | None, namespace: str | None,
             image: str | None, pull_policy: str | None, beamline: str | None,
             code_dir: str | None, output_dir: Path | None, kustomize: bool,
             check: bool, screens: bool) -> None:
    """Render the Kubernetes objects of IOC instances (TARGETS are instance configs).

    Each instance becomes a single-replica StatefulSet on the host network
    (hardened: non-root, read-only root filesystem, no capabilities, seccomp,
    probes), a ConfigMap with its config, a ServiceAccount without API token
    and a headless Service; the namespace carries the Pod Security labels.
    Settings come from the config's deploy: block; options override it.

    \b
    Examples:
      podioc manifest iocs/demo/demo.yaml | kubectl apply -f -
      podioc manifest iocs/demo/demo.yaml --image NAME@sha256:DIGEST -o out/
      podioc manifest --kustomize -o k8s iocs/*/*.yaml && kubectl apply -k k8s
    """
    if prefix is not None and len(targets) > 1:
        raise click.UsageError("--prefix applies to one TARGET only")
    if (kustomize or check) and output_dir is None:
        raise click.UsageError("--kustomize and --check need -o/--output-dir")
    overrides = {"namespace": namespace, "image": image, "image_pull_policy": pull_policy,
                 "beamline": beamline, "code_dir": code_dir}
    try:
        loaded = [_load(t, prefix, overrides) for t in targets]
        bobs = {cfg.name: _screens(cfg) for cfg, _, _ in loaded} if screens else {}
        if kustomize:
            assert output_dir is not None
            dirs, namespaces = _existing(output_dir)
            files = manifest_files.kustomize_tree(loaded, dirs, namespaces, bobs)
        elif output_dir is not None:
            files = {}
            for cfg, text, settings in loaded:
                sub = "" if len(loaded) == 1 else f"{cfg.name}/"
                name, body = "namespace.yaml", manifest_files.to_yaml(
                    [manifests.render_namespace(settings.namespace)],
                    header=manifest_files.header_for(cfg))
                files[sub + name] = body
                for fname, body in manifest_files.instance_files(
                        cfg, text, settings, screens=bobs.get(cfg.name)).items():
                    files[sub + fname] = body
        else:
            namespaces_seen: list[str] = []
            objects = []
            for cfg, text, settings in loaded:
                if settings.namespace not in namespaces_seen:
                    namespaces_seen.append(settings.namespace)
                    objects.append(manifests.render_namespace(settings.namespace))
                objects.extend(manifests.render_instance(cfg, text, settings,
                                                         bobs.get(cfg.name)))
            header = manifest_files.header_for(loaded[0][0])
            click.echo(manifest_files.to_yaml(objects, header=header), nl=False)
    except (PodiocError, OSError) as exc:
        raise fail(exc) from None
    for cfg, _, settings in loaded:
        if not settings.image_pinned:
            click.echo(f"note: {cfg.source}: image {settings.image} is given by tag; pin it "
                       "by digest for production (--image NAME@sha256:DIGEST)", err=True)
    if output_dir is None:
        return
    differ = _write(output_dir, files, check)
    if check:
        if differ:
            click.echo("out of date:\n  " + "\n  ".join(differ), err=True)
            raise SystemExit(1)
        click.echo(f"{output_dir}: up to date ({len(files)} files)")
    else:
        click.echo(f"{output_dir}: wrote {len(differ)} of {len(files)} files "
                   f"({len(files) - len(differ)} unchanged)", err=True)
