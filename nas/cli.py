"""`nas` command line (Typer)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from search_spaces import ArchError, HybridSupernet, SpaceError, get_space, list_presets

app = typer.Typer(help="Hardware-aware NAS for hybrid conv / attention / state-space networks.", no_args_is_help=True)
spaces_app = typer.Typer(help="Inspect search spaces.", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")
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
    try:
        space = get_space(name)
    except SpaceError as err:
        raise fail(str(err)) from None
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
    try:
        space = get_space(name)
        arch = space.sample(random.Random(seed))
    except (SpaceError, ArchError) as err:
        raise fail(str(err)) from None
    net = HybridSupernet.from_spec(space)
    info = {"arch_id": arch.id, "arch": arch.to_dict(), "params": net.params(arch), "macs": net.macs(arch)}
    if run:
        import torch

        x = torch.randn(2, *space.input_shape)
        with torch.no_grad():
            info["output_shape"] = list(net.eval()(x, arch).shape)
    print(json.dumps(info, indent=2))


@app.command("search")
def search(
    config_path: Path = typer.Argument(..., metavar="CONFIG.yaml", help="search config (YAML)"),
    out: Path = typer.Option(Path("runs/search"), "--out", help="output folder; rerunning resumes from it"),
) -> None:
    """Train a supernet, search it and write OUT/result.json (front, candidates, hypervolume)."""
    from nas.console import ConsoleReporter
    from nas.data import DataError
    from nas.pipeline import RESULT, RunDirError, run_search
    from nas.progress import Cancelled
    from nas.schemas import ConfigError, load_search_config

    try:
        config = load_search_config(config_path)
        with ConsoleReporter() as reporter:
            result = run_search(config, reporter, out)
    except (ConfigError, DataError, SpaceError, ArchError, RunDirError) as err:
        raise fail(str(err)) from None
    except Cancelled as err:
        raise fail(str(err)) from None
    show_front(result)
    console.print(f"hypervolume {result.hypervolume:.4f}   wrote {out / RESULT}")


@app.command("export")
def export(
    result: Path = typer.Option(..., "--result", help="a search's result.json"),
    arch: str = typer.Option(..., "--arch", help="arch id (or a unique prefix of at least 6 characters)"),
    fmt: str = typer.Option("pytorch", "--format", help="json | pytorch | torchscript | onnx | bundle"),
    out: Path | None = typer.Option(None, "--out", help="output path (default: next to result.json, named by id)"),
) -> None:
    """Export a candidate of a finished search."""
    from nas.data import DataError
    from nas.export import ExportError, export_candidate

    try:
        path = export_candidate(result, arch, fmt, out)
    except (ExportError, DataError, SpaceError, ArchError) as err:
        raise fail(str(err)) from None
    console.print(f"wrote {path}")


def show_front(result) -> None:
    names = list(result.config.objectives)
    extra = [k for k in ("test_accuracy", "finetuned_val_accuracy") if any(k in c.metrics for c in result.front)]
    table = Table("arch_id", "layers", *names, *extra, title=f"Pareto front ({len(result.front)} archs)")
    for c in sorted(result.front, key=lambda c: -c.metrics.get("accuracy", 0.0)):
        layers = "".join(layer["type"][0] for st in c.arch["stages"] for layer in st["layers"])
        table.add_row(c.arch_id[:12], layers, *[_metric(c.metrics[n]) for n in names + extra])
    console.print(table)


def _metric(v: float) -> str:
    return f"{v:.4f}" if v < 10 else f"{v:,.0f}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
