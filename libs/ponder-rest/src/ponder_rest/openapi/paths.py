"""OpenAPI paths of routes: grpc-gateway's `/v1/{name}`, or one parameter per wildcard segment."""

import re
from typing import Any

from ponder_rest.openapi.parameters import path_parameter, segment_parameter
from ponder_rest.openapi.schemas import Schemas
from ponder_rest.routes import Route
from ponder_rest.template import VARIABLE


def documented_path(
    schemas: Schemas, route: Route, *, expand: bool
) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a route and its path parameters."""
    if not expand:
        plain = [path_parameter(schemas, route, v) for v in route.template.variables]
        return route.template.openapi_path, plain
    variables = iter(route.template.variables)
    params: list[dict[str, Any]] = []
    taken: set[str] = set()

    def unique(name: str) -> str:
        candidate, number = name, 1
        while candidate in taken:
            number += 1
            candidate = f"{name}{number}"
        taken.add(candidate)
        return candidate

    def expand_one(found: re.Match[str]) -> str:
        variable = next(variables)
        segments = variable.pattern.split("/")
        if variable.pattern == "*" or "**" in segments:
            params.append(path_parameter(schemas, route, variable))
            taken.add(variable.field_path)
            return f"{{{variable.field_path}}}"
        out = []
        previous = ""
        for segment in segments:
            if segment != "*":
                out.append(segment)
                previous = segment
                continue
            name = unique(_singular(previous) if previous else variable.field_path)
            out.append(f"{{{name}}}")
            params.append(segment_parameter(schemas, route, variable, name))
            previous = ""
        return "/".join(out)

    return VARIABLE.sub(expand_one, route.template.source), params


def _singular(word: str) -> str:
    """A plain English singular of a collection id: workflows, entries, shelves, addresses."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if word.endswith("lves"):
        return word[:-3] + "f"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 1:
        return word[:-1]
    return word
