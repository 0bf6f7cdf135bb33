"""The one table's functions (``ndr_edge.export.variants``): what each returns for every
input class, written from the README's description of the table, not from the code."""

from __future__ import annotations

import pytest

from ndr_edge.errors import InputError
from ndr_edge.export import variants as table


def test_backend_of_format_is_the_preferred_backend() -> None:
    assert table.backend_of_format("onnx") == "onnxruntime"  # ONNX Runtime before OpenVINO
    assert table.backend_of_format("engine") == "tensorrt"
    assert table.backend_of_format("checkpoint") == "pytorch"
    assert table.backend_of_format("tflite") is None
    assert table.backend_of_format("") is None


@pytest.mark.parametrize(("suffix", "fmt"), [(".onnx", "onnx"), (".ONNX", "onnx"), (".engine", "engine"),
                                             (".Plan", "engine"), (".trt", "engine"), (".safetensors", "checkpoint"),
                                             (".pth", "checkpoint"), (".PT", "checkpoint"), (".json", None),
                                             ("", None), (".tar.gz", None)])
def test_format_of_suffix(suffix: str, fmt: str | None) -> None:
    assert table.format_of_suffix(suffix) == fmt


def test_variant_backends_come_from_their_format() -> None:
    assert table.BY_NAME["onnx-int8"].backends == ("onnxruntime", "openvino")
    assert table.BY_NAME["engine-fp16"].backends == ("tensorrt",)
    assert table.REFERENCE.backends == ("pytorch",)


def test_each_int8_graph_is_meant_for_its_own_backends() -> None:
    cpu, trt = table.BY_NAME["onnx-int8"], table.BY_NAME["onnx-int8-trt"]
    assert cpu.meant_for("onnxruntime") and cpu.meant_for("openvino") and not cpu.meant_for("tensorrt")
    assert trt.meant_for("tensorrt") and not trt.meant_for("onnxruntime") and not trt.meant_for("openvino")
    assert table.BY_NAME["onnx-fp32"].meant_for("openvino")  # no serves: every backend of its format
    assert table.BY_NAME["engine-int8"].source == "onnx-int8-trt"  # TensorRT builds INT8 from the FP16 mixed graph


@pytest.mark.parametrize(("spec", "expected"), [
    ("fp32", ("fp32",)),
    ("int8", ("fp32", "int8")),  # FP32 is always made: the others come from it
    ("int8,fp16", ("fp32", "fp16", "int8")),  # in the table's order, not the option's
    (" FP16 , int8 ,", ("fp32", "fp16", "int8")),  # spaces, case, empty items
    ("", ("fp32",)),
    (["int8", "INT8", " fp16 "], ("fp32", "fp16", "int8")),  # an iterable, duplicates once
    ((), ("fp32",)),
])
def test_parse_precisions(spec: object, expected: tuple[str, ...]) -> None:
    assert table.parse_precisions(spec) == expected  # type: ignore[arg-type]


def test_parse_precisions_names_the_unknown_ones() -> None:
    with pytest.raises(InputError) as caught:
        table.parse_precisions("fp16,bf16, int4")
    assert str(caught.value) == "--precision bf16,int4: unknown; choose from fp32,fp16,int8"


@pytest.mark.parametrize(("text", "expected"), [("0.3", 0.3), (" 1 ", 1.0), ("0", 0.0), ("-0.5", -0.5),
                                                ("none", None), ("NONE", None), (" off ", None), ("Off", None)])
def test_parse_budget(text: str, expected: float | None) -> None:
    assert table.parse_budget(text) == expected


def test_parse_budget_error_names_the_option_and_an_example() -> None:
    with pytest.raises(InputError) as caught:
        table.parse_budget("lots", "--int8-budget-db")
    assert str(caught.value) == "--int8-budget-db 'lots' is not a number of dB (e.g. 0.3) or 'none'"
    with pytest.raises(InputError) as caught:
        table.parse_budget("x")
    assert str(caught.value).startswith("--budget 'x' is not")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # `from None`: one clean line


def test_selected_variants() -> None:
    names = lambda vs: [v.name for v in vs]
    assert names(table.selected(("fp32",), engines=False)) == ["onnx-fp32"]
    assert names(table.selected(("fp32", "fp16", "int8"), engines=False)) == [
        "onnx-fp32", "onnx-fp16", "onnx-int8", "onnx-int8-trt"]
    assert names(table.selected(("fp32", "fp16", "int8"), engines=True)) == [
        "onnx-fp32", "onnx-fp16", "onnx-int8", "onnx-int8-trt", "engine-fp16", "engine-int8"]
    assert names(table.selected(["int8", "fp32"], engines=True)) == ["onnx-fp32", "onnx-int8", "onnx-int8-trt",
                                                                      "engine-int8"]
    assert names(table.selected(iter(["fp16"]), engines=True)) == ["onnx-fp16", "engine-fp16"]
    assert table.selected((), engines=True) == []


def test_export_config_checks_the_tensorrt_target() -> None:
    from ndr_edge.export.pipeline import ExportConfig

    assert ExportConfig(tensorrt_target="10.8").check().tensorrt_target == "10.8"
    for bad in ("9.2", "ten", ""):
        with pytest.raises(InputError, match="--tensorrt-target"):
            ExportConfig(tensorrt_target=bad).check()
