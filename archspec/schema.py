"""The spec language as a JSON Schema (draft 2020-12), for editors: `archspec schema -o FILE`.

Generated from the pydantic models (`Spec` and the registered block, stem and downsampling
families), so it cannot drift from what `load` accepts; every field's documentation (the
docstring under it) becomes its `description`. What pydantic cannot see is added here once: the
`base:` key (a spec with a base may leave out anything the base gives, so it is checked against
a "partial" copy of the schema without required keys), and the string shorthands the models
accept before validation (`norm: layer_norm`, `init: trunc_normal`, `downsample: layer`,
`ratio: "1:1:3:1"`, a stem without `type`), and that a family's `type` must be written.
See docs/editor.md.
"""
from __future__ import annotations

import copy
import json
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
PARTIAL = "Partial"


def _described_generator():
    """A pydantic schema generator that puts each field's docstring into its `description`."""
    from pydantic.json_schema import GenerateJsonSchema

    from .blocks.base import field_docs

    class Described(GenerateJsonSchema):
        def model_schema(self, schema):  # type: ignore[override]
            out = super().model_schema(schema)
            cls = schema["cls"]
            docs = field_docs(cls)
            for name, prop in out.get("properties", {}).items():
                if name in docs:
                    prop["description"] = docs[name]
                prop.pop("title", None)
            if cls.__doc__:
                out["description"] = " ".join(cls.__doc__.split())
            return out

    return Described


def _shorthand(schema: dict[str, Any], text: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or the string form the model accepts in its place."""
    return {"anyOf": [text, schema]}


def _type_names(defs: dict[str, Any], ref_holder: dict[str, Any]) -> list[str]:
    """The `type` values of the families a (discriminated) union refers to."""
    names = []
    for option in ref_holder.get("oneOf", ref_holder.get("anyOf", [ref_holder])):
        target = defs[option["$ref"].rsplit("/", 1)[1]] if "$ref" in option else option
        names.append(target["properties"]["type"]["const"])
    return names


def _add_shorthands(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    for name in ("NormSpec", "InitSpec"):
        obj = defs[name]
        types = obj["properties"]["type"]["enum"]
        defs[name] = _shorthand(obj, {"type": "string", "enum": types,
                                      "description": f"shorthand for {{type: NAME}}: "
                                                     f"{', '.join(types)}"})
    stages = defs["StagesSpec"]["properties"]
    down = stages["downsample"]
    stages["downsample"] = _shorthand(down, {"type": "string",
                                             "enum": _type_names(defs, down)})
    stages["downsample"]["description"] = down.get("description", "")
    ratio = stages["ratio"]
    stages["ratio"] = {"anyOf": [{"type": "string", "pattern": r"^\d+(:\d+)*$"},
                                 *ratio.get("anyOf", [ratio])],
                       "description": ratio.get("description", "")}


def _relax_unions(node: Any, tagged: set[str]) -> None:
    """Discriminated unions as `anyOf` (JSON Schema validators ignore OpenAPI's
    `discriminator`; each family's `type` is a `const`, so an unknown type matches nothing).
    Collects the families' definition names in `tagged`: their `type` is required."""
    if isinstance(node, dict):
        if "discriminator" in node and "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
            del node["discriminator"]
            tagged.update(o["$ref"].rsplit("/", 1)[1] for o in node["anyOf"] if "$ref" in o)
        for value in node.values():
            _relax_unions(value, tagged)
    elif isinstance(node, list):
        for value in node:
            _relax_unions(value, tagged)


def _require_type(defs: dict[str, Any], tagged: set[str]) -> None:
    """A family in a union is picked by its `type`, so `type` must be written (pydantic's
    discriminator requires it even where the field has a default), except a classic stem's:
    `stem: {pool: none}` is a classic stem (Spec fills in the type before validation)."""
    for name in tagged - {"ClassicStem"}:
        required = defs[name].setdefault("required", [])
        if "type" not in required:
            required.insert(0, "type")


def _partial(node: Any) -> Any:
    """A copy with no `required` keys and every `$ref` pointing at the partial definitions:
    what a spec with `base:` must satisfy (its base supplies the rest)."""
    if isinstance(node, dict):
        out = {k: _partial(v) for k, v in node.items() if k != "required"}
        if "$ref" in out:
            out["$ref"] = out["$ref"].replace("#/$defs/", f"#/$defs/{PARTIAL}")
        return out
    if isinstance(node, list):
        return [_partial(v) for v in node]
    return node


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file as written (draft 2020-12)."""
    from .spec import Spec
    generated = Spec.model_json_schema(schema_generator=_described_generator())
    _add_shorthands(generated)
    tagged: set[str] = set()
    _relax_unions(generated, tagged)
    defs = generated.pop("$defs")
    _require_type(defs, tagged)
    generated["properties"]["base"] = {
        "type": "string",
        "description": "Inherit every setting from another spec and change some: a file "
                       "relative to this one (`resnet50.yaml`) or a zoo name (`zoo:resnet50d`, "
                       "or `resnet50d` when no such file exists). Settings merge key by key; "
                       "lists and scalars replace."}
    full = {k: v for k, v in generated.items() if k not in ("title", "description")}
    defs["Spec"] = full
    for name, value in list(defs.items()):
        defs[PARTIAL + name] = _partial(value)
    return {
        "$schema": DRAFT,
        "$id": "https://archspec.invalid/spec.schema.json",
        "title": "archspec spec",
        "description": "A CNN architecture spec for archspec (docs/spec.md). "
                       + " ".join((Spec.__doc__ or "").split()),
        "type": "object",
        "if": {"required": ["base"]},
        "then": {"$ref": f"#/$defs/{PARTIAL}Spec"},
        "else": {"$ref": "#/$defs/Spec"},
        "$defs": defs,
    }


def to_json(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(copy.deepcopy(schema or spec_schema()), indent=2, sort_keys=False) + "\n"
