"""`nas` command line, engine commands (Typer): spaces, search, export, latency.

The service commands (serve, submit, status, ...) are added on top by api.cli, which is the console script.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from nas.export.formats import FORMATS
from nas.latency.backends import BACKENDS
from nas.progress import Cancelled
from search_spaces import BLOCKS, HybridSupernet, UserError, count, get_space, list_presets
from search_spaces.errors import field_messages


class ProductErrors(TyperGroup):
    """The one place where the product's errors (a UserError, a cancelled run) become a one-line message and
    exit code 2, never a traceback. Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: Any) -> Any:  # a click context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except (UserError, Cancelled) as err:
            raise fail(str(err)) from None


app = typer.Typer(help="Hardware-aware NAS for hybrid conv / attention / state-space networks.", no_args_is_help=True,
                  cls=ProductErrors)
spaces_app = typer.Typer(help="Inspect search spaces.", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")
latency_app = typer.Typer(help="Build, validate and query hardware latency tables.", no_args_is_help=True)
app.add_typer(latency_app, name="latency")
console = Console()


def fail(message: str) -> typer.Exit:
    """Print a clear error (no traceback) and return the exit to raise."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


@spaces_app.command("list")
def spaces_list() -> None:
    """List the bundled search-space presets."""
    table = Table("name", "input", "classes", "block types per stage", "log10 |space|")
    for name in list_presets():
        s = get_space(name)
        stages = " | ".join("/".join(st.blocks) for st in s.stages)
        table.add_row(name, f"{s.input.kind} {s.input_shape}", str(s.num_classes), stages,
                      f"{s.log10_cardinality():.1f}")
    console.print(table)


@spaces_app.command("show")
def spaces_show(name: str = typer.Argument(..., help="preset name or YAML path")) -> None:
    """Print a space's spec as JSON, with its size."""
    space = get_space(name)
    out = space.model_dump(mode="json") | {"cardinality": str(space.cardinality()),
                                           "log10_cardinality": round(space.log10_cardinality(), 3)}
    print(json.dumps(out, indent=2))


@spaces_app.command("sample")
def spaces_sample(
    name: str = typer.Argument(..., help="preset name or YAML path"),
    seed: int = typer.Option(0, help="random seed"),
    run: bool = typer.Option(False, "--run", help="also build the supernet and run the arch on a random batch"),
) -> None:
    """Sample an arch: its canonical JSON, id, params and MACs."""
    space = get_space(name)
    arch = space.sample(random.Random(seed))
    counts = count(space, arch)
    info = {"arch_id": arch.id, "arch": arch.to_dict(), "params": counts.params, "macs": counts.macs}
    if run:
        import torch

        net = HybridSupernet.from_spec(space).eval()
        x = torch.randn(2, *space.input_shape)
        with torch.no_grad():
            info["output_shape"] = list(net(x, arch).shape)
    print(json.dumps(info, indent=2))


@app.command("search")
def search(
    config_path: Path = typer.Argument(..., metavar="CONFIG.yaml", help="search config (YAML)"),
    out: Path = typer.Option(Path("runs/search"), "--out", help="output folder; rerunning resumes from it"),
) -> None:
    """Train a supernet, search it and write OUT/result.json (front, candidates, hypervolume)."""
    from nas.console import ConsoleReporter
    from nas.pipeline import run_search
    from nas.rundir import RESULT
    from nas.schemas import load_search_config

    config = load_search_config(config_path)
    with ConsoleReporter() as reporter:
        result = run_search(config, reporter, out)
    show_front(result)
    console.print(f"hypervolume {result.hypervolume:.4f}   wrote {out / RESULT}")


@app.command("export")
def export(
    result: Path = typer.Option(..., "--result", help="a search's result.json"),
    arch: str = typer.Option(..., "--arch", help="arch id (or a unique prefix of at least 6 characters)"),
    fmt: str = typer.Option("pytorch", "--format", help=" | ".join(FORMATS.names())),
    out: Path | None = typer.Option(None, "--out", help="output path (default: the current folder, named by arch id)"),
) -> None:
    """Export a candidate of a finished search."""
    from nas.export import export_candidate

    path = export_candidate(result, arch, fmt, out or Path.cwd())
    typer.echo(f"wrote {path.resolve().relative_to(Path.cwd()) if path.resolve().is_relative_to(Path.cwd()) else path}")


INPUT_HELP = "re-target the space to this input shape, e.g. 3x16x16 (images) or 1x128 (sequences)"


def _space(space: str, input_shape: str | None, classes: int | None):
    """A space as a search on a dataset sees it: re-targeted to its input shape and class count."""
    spec = get_space(space)
    if input_shape is None and classes is None:
        return spec
    try:
        shape = tuple(int(v) for v in input_shape.lower().split("x")) if input_shape else spec.input_shape
    except ValueError:
        raise UserError(f"--input: expected dimensions like 3x16x16, got {input_shape!r}") from None
    return spec.with_input(shape, classes or spec.num_classes)


def _table_space(table, space: str | None, input_shape: str | None, classes: int | None):
    if space is None:
        if not table.spaces:
            raise UserError("the table names no space it was built for: pass --space")
        ref = table.spaces[0]
        space, input_shape = ref.name, input_shape or "x".join(map(str, ref.input_shape))
    return _space(space, input_shape, classes)


@latency_app.command("build")
def latency_build(
    space: str = typer.Option("hybrid-small", help="preset name or YAML path"),
    input_shape: str | None = typer.Option(None, "--input", help=INPUT_HELP),
    classes: int | None = typer.Option(None, help="re-target the space's head to this many classes"),
    device: str = typer.Option("cpu", help="cpu or cuda:N"),
    backend: str = typer.Option("torch", help="a registered latency backend: " + ", ".join(BACKENDS.names())),
    batch: int = typer.Option(1, help="batch size"),
    threads: int = typer.Option(2, help="threads, pinned while measuring"),
    repeats: int = typer.Option(100, help="timed runs per network (and as many of the reference network)"),
    block: int = typer.Option(5, help="runs per block; blocks alternate with the reference network's"),
    cover: int = typer.Option(3, help="networks each layer configuration is timed in"),
    allocator: str = typer.Option("steady", help="steady: glibc's malloc thresholds fixed while measuring (a "
                                                 "latency independent of the process's past); as-is: left alone"),
    calibration: int = typer.Option(40, help="whole networks measured to fit the per-call overhead"),
    archs: Path | None = typer.Option(None, help="only the layers these archs use (JSON list or JSON lines)"),
    name: str | None = typer.Option(None, help="profile name (default: derived from the settings)"),
    out: Path = typer.Option(..., "--out", help="the table (JSON); an existing one is resumed or extended"),
) -> None:
    """Time every layer configuration of a space inside whole networks (resumable); fit the call overhead.
    On an existing table of the same profile, time only the layers it lacks (another space, input or head)."""
    from nas.console import ConsoleReporter
    from nas.latency import HardwareProfile, Machine, build_table

    spec = _space(space, input_shape, classes)
    only = _read_archs(spec, archs) if archs else None
    try:
        profile = HardwareProfile(
            name=name or HardwareProfile.default_name(device, backend, batch, threads), device=device, backend=backend,
            threads=threads, batch_size=batch, repeats=repeats, block=block, cover=cover, allocator=allocator,
            machine=Machine.here(device))
    except ValidationError as err:
        raise UserError(f"invalid latency profile: {'; '.join(field_messages(err))}") from None
    with ConsoleReporter() as reporter:
        table = build_table(spec, profile, out, calibration, archs=only,
                            progress=lambda phase, n, total: reporter.progress(phase, n, total))
    console.print(f"{len(table.entries)} layer entries timed in {len(table.networks)} networks, overhead fitted on "
                  f"{table.correction.networks} networks, {table.build_seconds:.0f} s; wrote {out}")


def _read_archs(spec, path: Path) -> list:
    """Archs from a JSON list or JSON lines (bare archs or objects with an 'arch' field)."""
    if not path.is_file():
        raise UserError(f"archs file not found: {path}")
    text = path.read_text()
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: neither JSON nor JSON lines ({err})") from None
    items = items if isinstance(items, list) else [items]
    return [spec.parse(item.get("arch", item) if isinstance(item, dict) else item) for item in items]


@latency_app.command("validate")
def latency_validate(
    table_path: Path = typer.Argument(..., metavar="LUT.json"),
    space: str | None = typer.Option(None, help="the space whose archs are sampled (default: the table's first)"),
    input_shape: str | None = typer.Option(None, "--input", help=INPUT_HELP),
    classes: int | None = typer.Option(None, help="re-target the space's head to this many classes"),
    samples: int = typer.Option(100, help="random subnets measured end to end"),
    repeats: int | None = typer.Option(None, help="runs per network (default: the profile's; more: a more "
                                                   "precise ground truth)"),
    seed: int = typer.Option(0),
    out: Path | None = typer.Option(None, "--out", help="REPORT.json (a PNG plot is written beside it)"),
) -> None:
    """Measure random subnets end to end and compare with the table's predictions."""
    from nas.console import ConsoleReporter
    from nas.latency import LatencyTable, validate_table

    table = LatencyTable.load(table_path)
    spec = _table_space(table, space, input_shape, classes)
    with ConsoleReporter() as reporter:
        report = validate_table(table, spec, samples, seed, plot=out.with_suffix(".png") if out else None,
                                progress=lambda phase, n, total: reporter.progress(phase, n, total), repeats=repeats)
    if out:
        out.write_text(json.dumps(report, indent=2))
    noise = report["noise_floor"]
    console.print(f"n {report['n']}  MAPE {100 * report['mape']:.1f}%  RMSE {report['rmse_ms']:.3f} ms  "
                  f"within ±5% {100 * report['within_5pct']:.0f}%  within ±10% {100 * report['within_10pct']:.0f}%  "
                  f"Kendall {report['kendall_tau']:.3f}  Spearman {report['spearman_rho']:.3f}  "
                  f"(noise floor: median {100 * noise['median_rel_diff']:.1f}% between repeated measurements); "
                  f"raw, without calibration: within ±10% {100 * report['raw']['within_10pct']:.0f}%")


@latency_app.command("predict")
def latency_predict(
    table_path: Path = typer.Argument(..., metavar="LUT.json"),
    arch_path: Path = typer.Argument(..., metavar="ARCH.json"),
    space: str | None = typer.Option(None, help="the archs' space (default: the table's first)"),
    input_shape: str | None = typer.Option(None, "--input", help=INPUT_HELP),
    classes: int | None = typer.Option(None, help="re-target the space's head to this many classes"),
    calibrate: bool = typer.Option(False, "--calibrate", help="scale to this host's speed now (re-measures the "
                                   "table's reference network; cached for 5 minutes)"),
) -> None:
    """Predicted latency (ms) of an arch (a JSON arch, an export's JSON with an 'arch' field, or a list or
    JSON lines of them): one JSON line per arch."""
    from nas.latency import LatencyPredictor, LatencyTable
    from nas.latency.calibration import host_speed

    table = LatencyTable.load(table_path)
    spec = _table_space(table, space, input_shape, classes)
    archs = _read_archs(spec, arch_path)
    scale = host_speed(table) if calibrate else 1.0
    predicted = LatencyPredictor(table, spec, scale).predict_many(archs)
    for arch, ms in zip(archs, predicted, strict=True):
        print(json.dumps({"arch_id": arch.id, "latency_ms": float(ms), "profile": table.profile.name,
                          "calibration": scale}))


def show_front(result) -> None:
    names = list(result.config.objectives)
    extra = [k for k in ("test_accuracy", "finetuned_val_accuracy") if any(k in c.metrics for c in result.front)]
    table = Table("arch_id", "layers", *names, *extra, title=f"Pareto front ({len(result.front)} archs)")
    for c in sorted(result.front, key=lambda c: -c.metrics.get("accuracy", 0.0)):
        layers = "".join(BLOCKS[layer["type"]].letter for st in c.arch["stages"] for layer in st["layers"])
        table.add_row(c.arch_id[:12], layers, *[_metric(c.metrics.get(n)) for n in names + extra])
    console.print(table)


def _metric(v: float | None) -> str:
    if v is None:  # e.g. fine-tuning metrics of front archs that were not fine-tuned
        return ""
    return f"{v:.4f}" if v < 10 else f"{v:,.0f}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
