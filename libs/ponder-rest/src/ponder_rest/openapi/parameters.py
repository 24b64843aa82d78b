"""OpenAPI parameters: path variables (whole or one per wildcard segment) and query fields."""

import copy
import re
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ponder_rest.fields import resolve
from ponder_rest.openapi.schemas import (
    MESSAGE_TYPES,
    Schemas,
    enum_of,
    is_map,
    is_required,
    message_of,
    scalar_schema,
)
from ponder_rest.routes import Route
from ponder_rest.template import Variable
from ponder_rest.wkt import WELL_KNOWN, Form, form_of


def path_parameter(schemas: Schemas, route: Route, variable: Variable) -> dict[str, Any]:
    """The parameter of a path variable, named by its field path."""
    leaf = resolve(route.method.input_type, variable.field_path, json_names=False)[-1]
    schema = parameter_schema(schemas, leaf)
    if variable.pattern != "*" and schema.get("type") == "string":
        schema["pattern"] = _segment_pattern(variable.pattern)
    text = schemas.doc(leaf.full_name)
    if variable.pattern != "*":
        shape = f"Has the form `{variable.pattern}`."
        text = f"{text}\n\n{shape}" if text else shape
    return _parameter(variable.field_path, "path", schema, text, required=True)


def segment_parameter(
    schemas: Schemas, route: Route, variable: Variable, name: str
) -> dict[str, Any]:
    """One wildcard segment of an expanded path variable."""
    leaf = resolve(route.method.input_type, variable.field_path, json_names=False)[-1]
    text = f"A segment of `{variable.field_path}` (`{variable.pattern}`)."
    comment = schemas.doc(leaf.full_name)
    if comment:
        text = f"{text} {schemas.name_of(leaf)}: {comment}"
    return _parameter(name, "path", {"type": "string", "pattern": "^[^/]+$"}, text, True)


def parameter_schema(schemas: Schemas, descriptor: FieldDescriptor) -> dict[str, Any]:
    """The inline schema of a non-repeated scalar, enum or scalar WKT value."""
    if descriptor.type in MESSAGE_TYPES:
        return copy.deepcopy(dict(WELL_KNOWN[message_of(descriptor).full_name].schema))
    if descriptor.type == FieldDescriptor.TYPE_ENUM:
        return schemas.inline_enum(enum_of(descriptor))
    return scalar_schema(descriptor.type)


def query_parameters(schemas: Schemas, route: Route) -> list[dict[str, Any]]:
    """Every leaf request field bound neither by the path nor by the body."""
    if route.body == "*":
        return []
    excluded = {v.field_path for v in route.template.variables} | {route.body} - {""}

    def fields_of(
        message: Descriptor, path: str, name: str, required: bool, seen: tuple[str, ...]
    ) -> Iterator[dict[str, Any]]:
        """The parameters of the fields of `message`, the one at `path` (named `name`)."""
        for child in message.fields:
            child_path, child_name = path + child.name, name + schemas.name_of(child)
            if child_path in excluded or is_map(child):
                continue
            child_required = required and is_required(child)
            is_message = child.type in MESSAGE_TYPES
            form = form_of(message_of(child).full_name) if is_message else None
            if is_message and form not in (Form.WRAPPER, Form.STRING):
                chain = (*seen, message.full_name)
                nested = message_of(child)
                # Not expressible as query parameters; a recursive message is documented once.
                if not child.is_repeated and form is None and nested.full_name not in chain:
                    yield from fields_of(
                        nested, f"{child_path}.", f"{child_name}.", child_required, chain
                    )
                continue
            yield _query_parameter(schemas, child, child_name, child_required)

    return list(fields_of(route.method.input_type, "", "", True, ()))


def _query_parameter(
    schemas: Schemas, field: FieldDescriptor, name: str, required: bool
) -> dict[str, Any]:
    """The query parameter of a scalar, enum or scalar WKT field (repeated: exploded)."""
    schema = parameter_schema(schemas, field)
    if field.is_repeated:
        schema = {"type": "array", "items": schema}
    parameter = _parameter(name, "query", schema, schemas.doc(field.full_name), required)
    if field.is_repeated:
        parameter["style"] = "form"
        parameter["explode"] = True
    if field.GetOptions().deprecated:
        parameter["deprecated"] = True
    return parameter


def _parameter(
    name: str, where: str, schema: dict[str, Any], text: str, required: bool
) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": where}
    if text:
        parameter["description"] = text
    parameter["required"] = required
    parameter["schema"] = schema
    return parameter


def _segment_pattern(pattern: str) -> str:
    """A regular expression for a variable's segments, e.g. `^workflows/[^/]+$`."""
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append("[^/]+(/[^/]+)*")
        elif segment == "*":
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return "^" + "/".join(parts) + "$"
