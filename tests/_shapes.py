"""The parse parity tests' shared pieces: every structure shape a service's answers can hold, an
outcome (a value or the error), and a value whose dicts compare with their key order."""

from __future__ import annotations

from typing import Any


def structures(model: Any, *, errors: bool = True) -> list[Any]:
    """Every structure shape reachable from the operations' outputs (and their errors' shapes)."""
    seen: set[int] = set()
    found: list[Any] = []

    def walk(shape: Any, depth: int) -> None:
        if shape is None or depth > 8 or id(shape) in seen:
            return
        seen.add(id(shape))
        if shape.type_name == "structure":
            found.append(shape)
            for member in shape.members.values():
                walk(member, depth + 1)
        elif shape.type_name == "list":
            walk(shape.member, depth + 1)
        elif shape.type_name == "map":
            walk(shape.key, depth + 1)
            walk(shape.value, depth + 1)

    for name in model.operation_names:
        op = model.operation_model(name)
        walk(op.output_shape, 0)
        for error in op.error_shapes if errors else ():
            walk(error, 0)
    return found


def outcome(parse: Any, shape: Any, node: Any) -> tuple[Any, ...]:
    """``("ok", the value with its dicts' key order)`` or ``("error", its type's name, its text)``."""
    try:
        return ("ok", ordered(parse(shape, node)))
    except Exception as exc:  # noqa: BLE001 - the error is the outcome compared
        return ("error", type(exc).__name__, str(exc))


def ordered(value: Any) -> Any:
    """The value with every dict as a list of its items: equal only if keys come in the same order."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value
