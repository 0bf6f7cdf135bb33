"""The project's structure rules (issue 14): every choice is defined once, in
``ndr_edge.export.variants``, and the commands take their choices and defaults from it; the
runtime and the report have no import cycles (function-local imports included); the
runtime's backends are the only model runners."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ndr_edge.export import variants

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"ndr_edge": "ndr_edge", "export": "ndr_edge.export", "runtime": "ndr_edge.runtime",
         "calibration": "ndr_edge.calibration"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Importable name -> (file, is a package ``__init__``) for every library module."""
    found = {}
    for folder, package in ROOTS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            if folder == "ndr_edge" and parts and parts[0] in ("export", "runtime", "calibration"):
                continue
            found[".".join([package, *parts])] = (path, path.name == "__init__.py")
    return found


def _option(command: click.Command, name: str) -> click.Parameter:
    return next(p for p in command.params if p.name == name)


# -- one table ------------------------------------------------------------------------------
def test_export_cli_takes_its_choices_and_defaults_from_the_table() -> None:
    from ndr_edge.export.cli import main

    method = _option(main, "int8_method")
    assert isinstance(method.type, click.Choice) and tuple(method.type.choices) == variants.INT8_METHODS
    assert method.default == variants.DEFAULT_INT8_METHOD
    assert _option(main, "int8_budget_db").default == str(variants.DEFAULT_BUDGET_DB)
    assert _option(main, "workspace_mb").default == variants.DEFAULT_WORKSPACE_MB
    assert _option(main, "precision").default == ",".join(variants.PRECISIONS)
    assert _option(main, "fp16_converter").default == ",".join(variants.FP16_CONVERTERS)
    exporter = _option(main, "exporter")
    assert isinstance(exporter.type, click.Choice) and tuple(exporter.type.choices) == variants.ONNX_EXPORTERS
    assert _option(main, "opset").default == variants.DEFAULT_OPSET


def test_calibration_cli_takes_its_choices_and_defaults_from_the_table() -> None:
    from ndr_edge.calibration.cli import compare, quantize, sensitivity

    for command in (quantize, sensitivity):
        method = _option(command, "method")
        assert isinstance(method.type, click.Choice) and tuple(method.type.choices) == variants.INT8_METHODS
        assert method.default == variants.DEFAULT_INT8_METHOD
    assert _option(quantize, "budget").default == str(variants.DEFAULT_BUDGET_DB)
    assert _option(compare, "methods").default == ",".join(variants.INT8_METHODS)
    for command in (compare, quantize, sensitivity):
        activations = _option(command, "activations")
        assert isinstance(activations.type, click.Choice)
        assert tuple(activations.type.choices) == variants.INT8_ACTIVATIONS
        assert _option(command, "op_types").default == ",".join(variants.DEFAULT_INT8_OP_TYPES)


def test_runtime_cli_takes_its_choices_and_defaults_from_the_table() -> None:
    from ndr_edge.runtime.cli import main

    backend, precision = _option(main, "backend"), _option(main, "precision")
    assert isinstance(backend.type, click.Choice) and tuple(backend.type.choices) == variants.BACKEND_CHOICES
    assert isinstance(precision.type, click.Choice) and tuple(precision.type.choices) == variants.PRECISIONS
    assert _option(main, "overlap").default == variants.DEFAULT_OVERLAP


def test_library_defaults_are_the_table() -> None:
    from ndr_edge import calibration, runtime
    from ndr_edge.calibration.quantize import QuantSettings
    from ndr_edge.export.onnx_export import OnnxExportOptions
    from ndr_edge.export.pipeline import ExportConfig
    from ndr_edge.export.tensorrt_build import EngineBuildOptions

    config = ExportConfig()
    assert config.precisions == variants.PRECISIONS and config.workspace_mb == variants.DEFAULT_WORKSPACE_MB
    assert config.int8_method == variants.DEFAULT_INT8_METHOD and config.int8_budget_db == variants.DEFAULT_BUDGET_DB
    assert config.fp16_converters == variants.FP16_CONVERTERS
    assert EngineBuildOptions().workspace_mb == variants.DEFAULT_WORKSPACE_MB
    settings = QuantSettings()
    assert settings.method == variants.DEFAULT_INT8_METHOD and settings.op_types == variants.DEFAULT_INT8_OP_TYPES
    assert settings.activations == variants.INT8_ACTIVATIONS[0] and OnnxExportOptions().opset == variants.DEFAULT_OPSET
    assert calibration.METHODS is variants.INT8_METHODS and calibration.DEFAULT_BUDGET_DB is variants.DEFAULT_BUDGET_DB
    assert runtime.PRECISIONS is variants.PRECISIONS and runtime.BACKEND_CHOICES is variants.BACKEND_CHOICES
    tiling = runtime.TileConfig()
    assert (tiling.tile, tiling.overlap) == (variants.DEFAULT_TILE, variants.DEFAULT_OVERLAP)


def test_every_variant_names_a_known_format_precision_and_source() -> None:
    assert len(variants.BY_NAME) == len(variants.VARIANTS)
    for variant in (*variants.VARIANTS, variants.REFERENCE):
        assert variant.format in variants.FORMAT_BY_NAME and variant.precision in variants.PRECISIONS
        assert variant.backends and variant.source in (None, *variants.BY_NAME)
        if variant.filename:
            assert variants.format_of_suffix(Path(variant.filename).suffix) == variant.format
    assert set(variants.RUNTIME_BACKENDS) <= {b for f in variants.FORMATS for b in f.backends}


TABLE_NAMES = ("PRECISIONS", "VARIANTS", "FORMATS", "ENGINE_SUFFIXES", "ONNX_SUFFIXES", "SIDECAR_SUFFIX",
               "BACKENDS", "BACKEND_CHOICES", "METHODS", "INT8_METHODS", "FP16_CONVERTERS", "DEFAULT_BUDGET_DB",
               "DEFAULT_WORKSPACE_MB", "DEFAULT_TILE", "DEFAULT_OVERLAP", "BACKEND_OF_FORMAT", "ACTIVATIONS",
               "INT8_ACTIVATIONS", "DEFAULT_OP_TYPES", "DEFAULT_INT8_OP_TYPES", "EXPORTERS", "ONNX_EXPORTERS",
               "DEFAULT_OPSET", "DEFAULT_INT8_METHOD")


def test_each_table_and_default_is_defined_in_one_module() -> None:
    """Module-level assignments of the table's names: only ``export/variants.py`` makes them."""
    owners: dict[str, list[str]] = {}
    for name, (path, _) in _modules().items():
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id in TABLE_NAMES:
                    owners.setdefault(target.id, []).append(name)
    assert owners and all(modules == ["ndr_edge.export.variants"] for modules in owners.values()), owners


def test_the_runtime_stays_torch_free() -> None:
    code = "import sys, ndr_edge.runtime, ndr_edge.export.variants; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


# -- no import cycles -----------------------------------------------------------------------
def _import_graph() -> dict[str, set[str]]:
    """Edges between library modules from every import statement, function-local ones
    included (``TYPE_CHECKING`` blocks too); imports of a package ``__init__`` that re-exports
    are left out, as importing a package's own submodule is."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name and not modules[target][1]:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]], within: tuple[str, ...]) -> list[list[str]]:
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node.startswith(within) and node not in state:
            visit(node, [])
    return found


@pytest.mark.parametrize("package", ["ndr_edge.runtime", "ndr_edge.report", "ndr_edge.export", "ndr_edge.calibration"])
def test_no_import_cycles(package: str) -> None:
    graph = _import_graph()
    assert any(name.startswith(package + ".") for name in graph)
    assert _cycles(graph, (package + ".",)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """Control: a restorer <-> stream style cycle through a function-local import is found."""
    graph = {"a.restorer": {"a.stream"}, "a.stream": {"a.restorer"}, "a.other": set()}
    assert _cycles(graph, ("a.",)) == [["a.restorer", "a.stream", "a.restorer"]]


# -- one backend layer ----------------------------------------------------------------------
def test_only_the_backends_run_models() -> None:
    """ONNX Runtime's ``session.run(...)`` and TensorRT's ``execute_async_v3`` appear only in
    the runtime's backend modules: everything else runs a model through ``open_backend``."""
    allowed = {"ndr_edge.runtime.onnxruntime_backend", "ndr_edge.runtime.tensorrt_backend"}
    pattern = re.compile(r"\.run\(\s*(None|\[)|execute_async_v3\(")
    users = {name for name, (path, _) in _modules().items() if pattern.search(path.read_text())}
    assert users <= allowed, users - allowed
