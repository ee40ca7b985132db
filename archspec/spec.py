"""The spec language: what the user writes, validated (pydantic v2), with no arithmetic.

Every model forbids unknown keys and documents each field (its docstring). `load()` reads a file
(with `base:` inheritance and `--set` overrides) and turns every validation error into a located
`Problem`: file:line:col, the YAML path, what was expected, what was found, a hint.
"""
from __future__ import annotations

import functools
import os
import types
import typing
from typing import Annotated, Any, ClassVar, Literal, Union

import pydantic
from pydantic import Field, PrivateAttr, TypeAdapter, field_validator, model_validator

from .blocks import BLOCKS, DOWNSAMPLES, STEMS
from .blocks.attachments import ATTENTIONS
from .blocks.base import Activation, BlockSpecBase, Model, NormSpec, field_docs, on_register
from .blocks.regnet import RegNetStagesSpec
from .errors import Location, Path, Problem, SpecError, did_you_mean, format_path
from .loader import SourceMap, apply_overrides, load_file
from .merge import MergeNote, TypedSetting, merge



def _block_union() -> Any:
    """Every registered block family, told apart by `type`."""
    return Annotated[Union[tuple(BLOCKS.values())], Field(discriminator="type")]  # type: ignore


BlockSpec = _block_union()
StemSpec = Annotated[Union[tuple(STEMS.values())], Field(discriminator="type")]  # type: ignore
DownsampleSpec = Annotated[Union[tuple(DOWNSAMPLES.values())],  # type: ignore
                           Field(discriminator="type")]


@functools.cache
def _block_adapter() -> TypeAdapter:
    """Validator of a bare block (stage overrides): built on first use, not at import (most
    specs have no overrides, and building it cost every command that loads a spec)."""
    return TypeAdapter(BlockSpec)


#: field name -> registry, for fields whose values are tagged by `type`.
_TAGGED = {"block": ("block", BLOCKS), "stem": ("stem", STEMS),
           "downsample": ("downsampling", DOWNSAMPLES), "attention": ("attention", ATTENTIONS)}


class InputSpec(Model):
    """The input images: used for every shape and MAC count."""

    channels: int = Field(default=3, gt=0)
    """Image channels (3 for RGB)."""
    image_size: int | list[int] = 224
    """Height and width: one number for square images, or [height, width]."""

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: int | list[int]) -> int | list[int]:
        sizes = [value] if isinstance(value, int) else value
        if len(sizes) not in (1, 2) or any(s < 1 for s in sizes):
            raise ValueError("a positive size or [height, width]")
        return value

    @property
    def hw(self) -> tuple[int, int]:
        s = self.image_size
        return (s, s) if isinstance(s, int) else (s[0], s[-1])


class StagesSpec(Model):
    """The stages: how many blocks each has, its width and its stride."""

    depths: list[Annotated[int, Field(gt=0)]] | None = None
    """Blocks per stage, e.g. [3, 4, 6, 3]. Or give `ratio` and `unit` instead."""
    ratio: list[Annotated[int, Field(gt=0)]] | None = None
    """Stage compute ratio, e.g. [1, 1, 3, 1] (or "1:1:3:1"); depths = ratio x unit."""
    unit: int | None = Field(default=None, gt=0)
    """Multiplier of `ratio`: ratio 1:1:3:1 with unit 3 gives depths 3, 3, 9, 3."""
    widths: list[Annotated[int, Field(gt=0)]] | None = Field(default=None, min_length=1)
    """Output channels of each stage, e.g. [256, 512, 1024, 2048]. Required unless `regnet`
    generates them."""
    regnet: RegNetStagesSpec | None = None
    """RegNet's generator, instead of `widths` and `depths`: `{w0: 48, wa: 20.71, wm: 2.65,
    depth: 27}` gives RegNetY-1.6GF's stages, quantised as pycls and timm do (docs/blocks.md,
    "RegNet"); `build` prints the widths, depths and group widths it resolved to."""
    strides: list[Annotated[int, Field(gt=0)]] | None = None
    """Stride of each stage's first block. Default: 1 for the first stage, 2 for the others;
    2 for every stage when `regnet` generates them (RegNet has no stem pool)."""
    # Keys lax: a spec saved as JSON (a checkpoint's) writes the stage indices as text.
    overrides: dict[Annotated[int, Field(strict=False)], dict[str, Any]] = Field(
        default_factory=dict)
    """Per-stage block settings, by stage index (from 0), laid over `block`; an override with
    another `type` replaces the block of that stage."""
    downsample: DownsampleSpec = Field(default_factory=lambda: DOWNSAMPLES["in_block"]())
    """How a stage changes stride and width: `in_block` (its first block does, ResNet) or
    `layer` (a separate norm -> kxk conv before the stage, ConvNeXt:
    `{type: layer, kernel_size: 2, norm: layer_norm}`; the blocks then keep the shape)."""

    @field_validator("downsample", mode="before")
    @classmethod
    def _downsample_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @field_validator("ratio", mode="before")
    @classmethod
    def _ratio_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return [int(part) for part in value.split(":")]
            except ValueError:
                raise ValueError("a list such as [1, 1, 3, 1] or a string such as '1:1:3:1'")
        return value


class HeadConvSpec(Model):
    """A conv before the global pooling (MobileNetV2: 1x1 to 1280 -> BN -> ReLU6)."""

    width_settings: ClassVar[tuple[str, ...]] = ("out_channels",)

    out_channels: int = Field(gt=0)
    """Width of the conv (MobileNetV2: 1280)."""
    kernel_size: int = Field(default=1, gt=0)
    """Kernel of the conv (padding (kernel_size - 1) // 2: an odd kernel keeps the size)."""
    norm: NormSpec | None = None
    """Norm after the conv. Default: the network's `norm`."""
    activation: Activation | None = None
    """Activation after the norm. Default: the network's `activation`."""


class HeadSpec(Model):
    """The classifier: optional conv -> global pooling -> optional norm -> dropout -> linear."""

    conv: HeadConvSpec | None = None
    """A pre-logits conv -> norm -> activation before pooling (MobileNetV2:
    `{out_channels: 1280}`). Default none."""

    pool: Literal["avg", "max"] = "avg"
    """Global pooling over the spatial positions."""
    norm: NormSpec = NormSpec(type="none")
    """Norm after pooling (ConvNeXt: layer_norm). Default none."""
    dropout: float = Field(default=0.0, ge=0, lt=1)
    """Dropout probability before the classifier."""
    num_classes: int = Field(default=1000, ge=0)
    """Classes of the linear classifier; 0 leaves it out (the network returns pooled features)."""


class ScalingScopeSpec(Model):
    """Which parts of the network `width_multiplier` and `depth_multiplier` scale. The stage
    widths and the inner stages' depths always follow them; the stem, the head conv and the
    first and last stages' depths follow them by default (EfficientNet's compound scaling)."""

    stem: Literal["scaled", "fixed"] = "scaled"
    """The stem's widths: `scaled` with the stages (EfficientNet) or `fixed` as written (timm's
    `fix_stem`, MobileNetV2 110d/120d)."""
    head: Literal["scaled", "fixed", "at_least_written"] = "scaled"
    """The head conv's width: `scaled` (EfficientNet), `fixed` as written, or
    `at_least_written`: max(written, scaled), so a narrower network keeps its head (timm's
    MobileNetV2: max(1280, 1280 x multiplier))."""
    end_depths: Literal["scaled", "fixed"] = "scaled"
    """The first and last stages' depths: `scaled` by `depth_multiplier` as every stage
    (EfficientNet) or `fixed` as written (timm's `fix_first_last`, MobileNetV2 110d/120d)."""


class InitSpec(Model):
    """How the torch module's weights start (no effect on shapes or counts)."""

    type: Literal["kaiming_normal", "trunc_normal"] = "kaiming_normal"
    """`kaiming_normal`: He (fan-out) normal for convs, PyTorch's default for linear layers
    (torchvision's ResNet). `trunc_normal`: conv and linear weights from a normal with `std`
    truncated to [-2, 2] (timm's and the ConvNeXt reference's call), biases zero."""
    std: float = Field(default=0.02, gt=0)
    """Standard deviation of `trunc_normal` (ConvNeXt: 0.02)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class Spec(Model):
    """A whole network."""

    name: str = Field(min_length=1)
    """Short name, used in summaries and file names."""
    description: str = ""
    """Free text: the paper, the variant, anything a reader should know."""
    input: InputSpec = InputSpec()
    """The input images."""
    norm: NormSpec = NormSpec(type="batch_norm")
    """Default norm of every layer that has one (stem, blocks, shortcuts)."""
    activation: Activation = "relu"
    """Default activation of the stem and the blocks."""
    stem: StemSpec = Field(default_factory=lambda: STEMS["classic"]())
    """The layers before the first stage (`type`: classic, deep or patchify)."""
    stages: StagesSpec
    """Depths, widths and strides of the stages."""
    block: BlockSpec
    """The block every stage is made of (`type` picks the family)."""
    head: HeadSpec = HeadSpec()
    """The classifier."""
    zero_init_residual: bool = True
    """Start the last norm of each residual branch at zero (Bag of Tricks), so every block
    begins as the identity. Parameter and MAC counts do not depend on it."""
    drop_path_rate: float = Field(default=0.0, ge=0, lt=1)
    """Stochastic depth: the drop rate grows linearly from 0 to this over all blocks."""
    drop_path_schedule: Literal["linear", "linear_exclusive"] = "linear"
    """How the drop rate grows over the n blocks: `linear`, block i gets drop_path_rate x i /
    (n - 1), the last the full rate (ResNet, ConvNeXt); `linear_exclusive`, drop_path_rate x
    i / n (timm's EfficientNet and MobileNet builder)."""
    init: InitSpec = InitSpec()
    """Weight initialization of the torch module (`kaiming_normal` or `trunc_normal`)."""
    width_multiplier: float = Field(default=1.0, gt=0)
    """Scales every width set by hand: the stage widths, the stem's (`out_channels` or
    `widths`) and the head conv's (as `scaling_scope` says); block-internal widths follow from
    them. Each scaled width is make_divisible(width x multiplier, width_divisor) (timm/EfficientNet:
    nearest multiple, halves up, at least the divisor, one more step if rounding lost over 10%).
    A positive number, e.g. 1.1 (EfficientNet-B2); 1 changes nothing."""
    depth_multiplier: float = Field(default=1.0, gt=0)
    """Scales the blocks of every stage (the first and last as `scaling_scope` says):
    ceil(depth x multiplier) (EfficientNet). A positive number, e.g. 1.2 (EfficientNet-B2); 1
    changes nothing."""
    width_divisor: int = Field(default=8, ge=1)
    """The multiple that `width_multiplier` rounds each width to: a positive integer (8, as timm
    and EfficientNet; 1 rounds to the nearest integer)."""
    scaling_scope: ScalingScopeSpec = ScalingScopeSpec()
    """Which parts the multipliers scale: `stem`, `head` (the head conv) and `end_depths` (the
    first and last stages' depths); by default all of them (EfficientNet)."""

    _path: str | None = PrivateAttr(default=None)
    _sources: SourceMap = PrivateAttr(default_factory=SourceMap)
    _stage_notes: list[MergeNote] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_stem_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("stem"), dict) \
                and "type" not in data["stem"]:
            data = {**data, "stem": {"type": "classic", **data["stem"]}}
        return data

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def sources(self) -> SourceMap:
        return self._sources

    def location(self, path: Path) -> Location | None:
        return self._sources.value(path)

    @property
    def num_stages(self) -> int:
        """How many stages the spec asks for: one per width, or the RegNet generator's count."""
        st = self.stages
        if st.widths is None and st.regnet is not None:
            return st.regnet.stages
        return len(st.widths or ())

    @property
    def notes(self) -> list[MergeNote]:
        """What inheritance did that a reader should know (archspec.merge), stage overrides
        included once `stage_blocks` has run."""
        return self._sources.notes + [n for n in self._stage_notes
                                      if n not in self._sources.notes]

    def strict_problems(self) -> list[Problem]:
        """Under --strict, every setting a type change dropped is an error."""
        return [n.problem() for n in self.notes if n.kind == "dropped"]

    def stage_blocks(self, num_stages: int) -> tuple[list[BlockSpecBase], list[Path]]:
        """The block of each stage (block + that stage's override) and the YAML path of each."""
        base = self.block.model_dump(exclude_unset=True, mode="python")
        base["type"] = self.block.type
        in_block = {("stages", "overrides", -1) + p[1:]: loc
                    for p, loc in self._sources.values.items() if p[:1] == ("block",)}
        notes: list[MergeNote] = []
        blocks: list[BlockSpecBase] = []
        paths: list[Path] = []
        problems: list[Problem] = []
        for i in range(num_stages):
            override = self.stages.overrides.get(i)
            if not override:
                blocks.append(self.block)
                paths.append(("block",))
                continue
            same = override.get("type", self.block.type) == self.block.type
            here: Path = ("stages", "overrides", i)
            # the same rules as inheritance: `block` is the base of each stage's override
            scratch = SourceMap(values={here + p[3:]: loc for p, loc in in_block.items()})
            merged = merge(base, override, scratch, self._sources, typed_setting, here)
            notes += scratch.notes
            try:
                blocks.append(_block_adapter().validate_python(merged))
            except pydantic.ValidationError as exc:
                problems += _problems(exc, self._sources, prefix=(),
                                      relocate=lambda p: here + p[1:]
                                      if len(p) < 2 or p[1] in override or not same
                                      else p)
            paths.append(here)
        if problems:
            raise SpecError(problems)
        self._stage_notes = notes
        return blocks, paths


def _join_late_family() -> None:
    """A family registered after this module was imported (a third-party module imported by the
    user, or an entry point loaded late): rebuild `Spec`'s union of block specs, so validate,
    build and the schema accept its `type` like a built-in one."""
    from pydantic.fields import FieldInfo
    old = Spec.model_fields["block"]
    field = FieldInfo.from_annotation(_block_union())
    field.description = old.description
    Spec.model_fields["block"] = field
    Spec.model_rebuild(force=True)
    _block_adapter.cache_clear()


on_register(_join_late_family)


def load(source: str | os.PathLike | dict, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """Read and validate a spec file (or an already-parsed mapping); raise SpecError if wrong."""
    if isinstance(source, dict):
        data, sources, path = dict(source), SourceMap(), None
    else:
        path = str(source)
        data, sources = load_file(path, typed_setting, settings=frozenset(Spec.model_fields))
    if overrides:
        data = apply_overrides(data, sources, list(overrides), typed_setting)
    return validate(data, sources, path)


def validate(data: dict, sources: SourceMap, path: str | None = None) -> Spec:
    try:
        spec = Spec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise SpecError(_problems(exc, sources, prefix=()))
    spec._path = path
    spec._sources = sources
    _check_overrides(spec)
    return spec


def _check_overrides(spec: Spec) -> None:
    known = set(BLOCKS)
    problems = []
    n = spec.num_stages
    for index, override in spec.stages.overrides.items():
        if not 0 <= index < n:
            problems.append(Problem(spec.sources.key(("stages", "overrides", index)),
                                    format_path(("stages", "overrides", index)),
                                    f"expected a stage index from 0 to {n - 1}, got {index}",
                                    f"the spec has {n} stages ("
                                    + ("one per width)" if spec.stages.widths is not None
                                       else "stages.regnet.stages)")))
        elif "type" in override and override["type"] not in known:
            problems.append(Problem(spec.sources.value(("stages", "overrides", index, "type")),
                                    format_path(("stages", "overrides", index, "type")),
                                    f"unknown block type '{override['type']}'",
                                    did_you_mean(override["type"], known)))
    if problems:
        raise SpecError(problems)


# ---- what inheritance needs to know: the typed settings (archspec.merge) -------------------

def _settings(cls: type) -> dict[str, Any]:
    """A model's settings (all but `type`) with their defaults, as plain data."""
    out = {}
    for name, info in cls.model_fields.items():
        if name != "type":
            default = info.get_default(call_default_factory=True)
            out[name] = default.model_dump(mode="json") if isinstance(default, Model) else default
    return out


def _of_registry(registry: dict[str, type]):
    return lambda tag: _settings(registry[tag]) if tag in registry else None


def _per_type(cls: type, table: dict[str, tuple[str, ...]]):
    """One model for several types, each type with only some of its settings."""
    return lambda tag: {k: v for k, v in _settings(cls).items() if k in table[tag]} \
        if tag in table else None


_BLOCK = TypedSetting("block", None, _of_registry(BLOCKS))
#: path (stage indices as "*") -> the typed setting there; any `norm` is a typed setting too
TYPED: dict[tuple, TypedSetting] = {
    ("stem",): TypedSetting("stem", "classic", _of_registry(STEMS)),
    ("block",): _BLOCK,
    ("stages", "overrides", "*"): _BLOCK,
    ("stages", "downsample"): TypedSetting("downsampling", "in_block",
                                           _of_registry(DOWNSAMPLES)),
    ("init",): TypedSetting("init", "kaiming_normal",
                            _per_type(InitSpec, {"kaiming_normal": (), "trunc_normal": ("std",)})),
}
_ATTENTION = TypedSetting("attention", None, _of_registry(ATTENTIONS))
_NORM = TypedSetting("norm", None, _per_type(
    NormSpec, {"batch_norm": ("eps", "momentum"), "layer_norm": ("eps",), "none": ()}))


def typed_setting(path: Path) -> TypedSetting | None:
    """What is typed at `path` (a mapping with a `type`, or its bare type name), if anything."""
    if path and path[-1] == "norm":
        return _NORM
    if path and path[-1] == "attention":
        return _ATTENTION
    return TYPED.get(tuple("*" if isinstance(p, int) else p for p in path))


# ---- pydantic errors -> located problems ---------------------------------------------------

def _problems(exc: pydantic.ValidationError, sources: SourceMap, prefix: Path,
              relocate=None) -> list[Problem]:
    grouped: dict[tuple, list[tuple[dict, Any]]] = {}
    for err in exc.errors(include_url=False):
        path, field = _walk(Spec if not relocate else None, err["loc"], relocate)
        grouped.setdefault(path, []).append((err, field))
    problems = []
    for path, errs in grouped.items():
        problems.append(_problem(path, errs, sources))
    return problems


def _problem(path: Path, errs: list[tuple[dict, Any]], sources: SourceMap) -> Problem:
    err, field = errs[0]
    kind = err["type"]
    shown = format_path(path)
    doc = _doc(field)
    if kind == "extra_forbidden":
        known = field if isinstance(field, list) else []
        return Problem(sources.key(path), shown, f"unknown setting '{path[-1]}'",
                       did_you_mean(path[-1], known))
    if kind == "missing":
        return Problem(sources.value(path[:-1]), shown, "required setting is missing",
                       f"add `{path[-1]}:`" + (f" ({doc})" if doc else ""))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        what, registry = _TAGGED.get(_tag_field(path), ("block", BLOCKS))
        if kind == "union_tag_not_found":
            return Problem(sources.value(path), shown, f"missing `type` of the {what}",
                           f"add `type:`; known: {', '.join(sorted(registry))}")
        tag = err["ctx"]["tag"]
        return Problem(sources.value(path + ("type",)), f"{shown}.type",
                       f"unknown {what} type '{tag}'", did_you_mean(tag, registry))
    expected = " or ".join(dict.fromkeys(_expected(e) for e, _ in errs))
    hint = _type_hint(err["input"], {e["type"] for e, _ in errs}) or doc
    if kind == "literal_error" and isinstance(err["input"], str):
        options = [o.strip(" '") for o in err["ctx"]["expected"].replace(" or ", ",").split(",")]
        hint = did_you_mean(err["input"], [o for o in options if o])
    return Problem(sources.value(path), shown, f"expected {expected}, got {_show(err['input'])}",
                   hint)


_NUMBER_ERRORS = {"int_type", "float_type", "int_parsing", "float_parsing", "int_from_float"}


def _type_hint(value: Any, kinds: set[str]) -> str | None:
    """Why a value that looks right has the wrong type (the spec's types are strict)."""
    if not kinds & (_NUMBER_ERRORS | {"bool_type", "bool_parsing"}):
        return None
    if isinstance(value, bool):
        return (f"`{str(value).lower()}` is a YAML boolean, not a number"
                if kinds & _NUMBER_ERRORS else None)
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return None
        return f"quoted, {value!r} is text: write {value} without quotes"
    if isinstance(value, float) and value.is_integer() and kinds & _NUMBER_ERRORS:
        return f"this setting takes an integer: write {int(value)}"
    if isinstance(value, int) and kinds & {"bool_type", "bool_parsing"}:
        return "write true or false"
    return None


def _expected(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        return msg
    kind = err["type"].removeprefix("string_")
    if kind in ("too_short", "too_long"):
        bound = err["ctx"]["min_length" if kind == "too_short" else "max_length"]
        unit = ("character", "characters") if isinstance(err["input"], str) \
            else ("entry", "entries")
        return f"{'at least' if kind == 'too_short' else 'at most'} {bound} {unit[bound != 1]}"
    msg = msg.removeprefix("Input should be ")
    for bound in ("greater than", "less than"):
        if msg.startswith(bound):
            msg = "a value " + msg
    if err["type"] in ("int_parsing", "int_type", "float_parsing", "float_type", "bool_parsing",
                       "bool_type", "list_type", "dict_type", "string_type", "int_from_float"):
        msg = msg.split(",")[0]
    return msg


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    return str(value).replace("True", "true").replace("False", "false")


def _doc(field: Any) -> str | None:
    """The field's documentation, as the hint for a wrong value."""
    if isinstance(field, tuple):
        doc = field_docs(field[0]).get(field[1])
        return " ".join(doc.split()) if doc else None
    return None


def _tag_field(path: Path) -> str:
    for elem in reversed(path):
        if elem in _TAGGED:
            return elem
    return "block"


def _walk(model: Any, loc: tuple, relocate=None) -> tuple[Path, Any]:
    """Turn a pydantic `loc` into the YAML path (dropping union tags and member names) and find
    the field it names (or, for an unknown key, the list of valid names)."""
    path: list = []
    ann: Any = model
    field: Any = None
    i = 0
    if model is None:  # a bare block union (stage overrides)
        ann, i = None, 0
        if loc and loc[0] in BLOCKS:
            ann, i = BLOCKS[loc[0]], 1
        path.append("block")
    while i < len(loc):
        elem = loc[i]
        origin = typing.get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, pydantic.BaseModel):
            if elem not in ann.model_fields:
                path.append(elem)
                field = sorted(ann.model_fields)
                break
            field = (ann, elem)
            path.append(elem)
            ann = ann.model_fields[elem].annotation
            if elem in _TAGGED and i + 1 < len(loc):
                registry = _TAGGED[elem][1]
                if loc[i + 1] in registry:
                    ann = registry[loc[i + 1]]
                    i += 1
            i += 1
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(members) == 1:
                ann = members[0]
                continue
            i += 1  # pydantic names the union member it tried; the path does not
            ann = next((m for m in members if typing.get_origin(m) in (list, dict)), members[0])
            continue
        if origin is Annotated:
            ann = typing.get_args(ann)[0]
            continue
        if origin in (list, dict):
            path.append(elem)
            ann = typing.get_args(ann)[-1]
            i += 1
            continue
        path.append(elem)
        i += 1
    result: Path = tuple(path)
    if relocate:
        result = relocate(result)
    return result, field
