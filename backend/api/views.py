"""Rows of our own database shown as a response model shows them, without validating them again.

`Model.model_validate(row).model_dump(mode="json")` checks every field of a row that the database
already holds to the same rules, then serializes it: the check was half the cost, and for a list of
200 free cars or a booking's five events most of a request's (issue 11). A RowView serializes a
mapping through the model's own field types (its serializers: amounts as "10.000", times with "Z"),
so the JSON is the model's, field for field and in its order; tests/api/test_views.py holds each
view to `model_validate(...).model_dump(mode="json")`.

Only for models whose output a validator does not shape: a model with validators or computed
fields is refused when the view is made, at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter
from typing_extensions import TypedDict


class RowView:
    """`model`'s JSON of trusted rows: `view(row)`, `view.many(rows)`."""

    def __init__(self, model: type[BaseModel]) -> None:
        decorators = model.__pydantic_decorators__
        if decorators.field_validators or decorators.model_validators or decorators.computed_fields:
            raise TypeError(f"{model.__name__}: a validator or computed field shapes its output; validate it instead")
        fields = {name: Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
                  for name, info in model.model_fields.items()}
        row_type = TypedDict(f"{model.__name__}Row", fields)       # type: ignore[operator]
        self.names = tuple(fields)
        self._one: TypeAdapter[Any] = TypeAdapter(row_type)
        self._many: TypeAdapter[Any] = TypeAdapter(list[row_type])  # type: ignore[valid-type]

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return self._one.dump_python({name: row[name] for name in self.names}, mode="json")

    def many(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        names = self.names
        return self._many.dump_python([{name: row[name] for name in names} for row in rows], mode="json")
