"""Write docs/spec_reference.md: every spec setting, from the pydantic models themselves.

    python scripts/gen_spec_reference.py          # rewrite the file
    python scripts/gen_spec_reference.py --check  # exit 1 if it is out of date
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import types
import typing

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from archspec.blocks import BLOCKS, STEMS  # noqa: E402
from archspec.blocks.attachments import ATTENTIONS  # noqa: E402
from archspec.blocks.se import SqueezeExciteSpec  # noqa: E402
from archspec.blocks.base import NormSpec, field_docs  # noqa: E402
from archspec.spec import HeadSpec, InputSpec, Spec, StagesSpec  # noqa: E402

TARGET = ROOT / "docs" / "spec_reference.md"


def type_name(ann) -> str:
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return type_name(typing.get_args(ann)[0])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(ann)
        if set(args) - {type(None)} == set(ATTENTIONS.values()):
            return ("one of the [attention types](#attention-attachments-blockattentiontype)"
                    + (" or null" if type(None) in args else ""))
        if all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
            return "one of the types below"
        return " or ".join(type_name(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(ann))
    if origin in (list, tuple):
        return f"list of {type_name(typing.get_args(ann)[0])}"
    if origin is dict:
        k, v = typing.get_args(ann)
        return f"mapping {type_name(k)} -> {type_name(v)}"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return f"[{ann.__name__}](#{ann.__name__.lower()})"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(
        ann, getattr(ann, "__name__", str(ann)))


def default_text(field, doc: str) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        dumped = value.model_dump(exclude_none=True)
        if "type" in dumped:
            return f"`{dumped['type']}`"
        return "`{" + ", ".join(f"{k}: {_flow(v)}" for k, v in dumped.items()) + "}`"
    if value is None:
        return "null (inherit)" if "Default: the network" in doc else "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    if isinstance(value, BaseModel) or isinstance(value, dict):
        return f"`{value}`"
    return f"`{value}`"


def _flow(value) -> str:
    if isinstance(value, dict):
        return value.get("type") or "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def table(model: type[BaseModel], title: str) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    lines = [f"### {title}", "", doc, "", "| setting | type | default | meaning |",
             "|---|---|---|---|"]
    docs = field_docs(model)
    for name, field in model.model_fields.items():
        desc = " ".join(docs.get(name, "").split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {type_name(field.annotation)} | {default_text(field, desc)} | "
                     f"{desc} |")
    return lines + [""]


def render() -> str:
    out = ["# Spec reference", "",
           "Generated from the pydantic models by `python scripts/gen_spec_reference.py`; do not "
           "edit by hand. The guide with examples is [spec.md](spec.md).", ""]
    out += ["## Network", ""]
    for model, title in ((Spec, "Spec"), (InputSpec, "InputSpec"), (StagesSpec, "StagesSpec"),
                         (HeadSpec, "HeadSpec"), (NormSpec, "NormSpec")):
        out += table(model, title)
    out += ["## Stems (`stem.type`)", ""]
    for tag, model in sorted(STEMS.items()):
        out += table(model, f"`{tag}`")
    out += ["## Blocks (`block.type`)", ""]
    for tag, model in sorted(BLOCKS.items()):
        out += table(model, f"`{tag}`")
    out += ["## Attention attachments (`block.attention.type`)", "",
            "`se:` on a block is short for `attention: {type: se, ...}`, with the same settings.",
            ""]
    out += table(SqueezeExciteSpec, "SqueezeExciteSpec")
    for tag, model in ATTENTIONS.items():
        out += table(model, f"`{tag}`")
    nested = _nested_models(BLOCKS.values(), (SqueezeExciteSpec, *ATTENTIONS.values()))
    if nested:
        out += ["## Other block settings with settings of their own", ""]
        for model in nested:
            out += table(model, model.__name__)
    return "\n".join(out).rstrip() + "\n"


def _nested_models(models, listed) -> list[type[BaseModel]]:
    """The models that block fields hold (`grn`, ...) and no table above shows, so their links
    resolve (the norm and the attention attachments have their own tables)."""
    found: dict[str, type[BaseModel]] = {}
    for model in models:
        for field in model.model_fields.values():
            for arg in typing.get_args(field.annotation) or (field.annotation,):
                if isinstance(arg, type) and issubclass(arg, BaseModel) \
                        and arg is not NormSpec and arg not in listed:
                    found.setdefault(arg.__name__, arg)
    return [found[name] for name in sorted(found)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run "
                  f"python scripts/gen_spec_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
