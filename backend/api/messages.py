"""Russian messages for every pydantic error type (SPEC §2.3): REST bodies and websocket error frames
take their field errors from here, so no surface ever shows pydantic's English text.

The table is keyed by pydantic-core's `ErrorType` names; tests check that it covers all of them,
so a pydantic upgrade that adds a type fails the suite instead of leaking English. A type still
unknown at run time gets a generic Russian message, never pydantic's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GENERIC = "Неверное значение."
OBJECT = "Ожидается объект JSON."
ARRAY = "Ожидается список."
INTEGER = "Требуется целочисленное значение."
NUMBER = "Требуется численное значение."
BOOLEAN = "Требуется логическое значение."
CHOICE = "Недопустимое значение. Допустимые значения: {expected}."
DATE = "Неправильный формат даты. Используйте формат YYYY-MM-DD."
TIME = "Неправильный формат времени. Используйте формат hh:mm:ss."
DATETIME = "Неправильный формат даты и времени. Используйте ISO 8601 (YYYY-MM-DDThh:mm:ssZ)."
DURATION = "Неправильный формат длительности."
UUID = "Неправильный UUID."
URL = "Неправильный URL."

MESSAGES: Mapping[str, str] = {
    # structure of the body
    "json_invalid": "Некорректный JSON.",
    "json_type": "Ожидается значение JSON.",
    "missing": "Обязательное поле.",
    "extra_forbidden": "Лишнее поле.",
    "no_such_attribute": "Лишнее поле.",
    "frozen_field": "Поле нельзя изменить.",
    "frozen_instance": "Поле нельзя изменить.",
    "invalid_key": "Неверный ключ.",
    "get_attribute_error": GENERIC,
    "needs_python_object": GENERIC,
    "recursion_loop": "Слишком глубокая вложенность.",
    "recursion_depth_exceeded": "Слишком глубокая вложенность.",
    "default_factory_not_called": GENERIC,
    "none_required": "Значение должно быть null.",
    "model_type": OBJECT,
    "model_attributes_type": OBJECT,
    "dataclass_type": OBJECT,
    "dataclass_exact_type": OBJECT,
    "dict_type": OBJECT,
    "frozen_dict_type": OBJECT,
    "ordered_dict_type": OBJECT,
    "counter_type": OBJECT,
    "mapping_type": OBJECT,
    "named_tuple_type": ARRAY,
    "list_type": ARRAY,
    "deque_type": ARRAY,
    "tuple_type": ARRAY,
    "set_type": ARRAY,
    "frozen_set_type": ARRAY,
    "iterable_type": ARRAY,
    "iteration_error": ARRAY,
    "set_item_not_hashable": GENERIC,
    "too_short": "Убедитесь, что здесь не менее {min_length} элементов.",
    "too_long": "Убедитесь, что здесь не более {max_length} элементов.",
    # numbers
    "greater_than": "Убедитесь, что значение больше {gt}.",
    "greater_than_equal": "Убедитесь, что значение больше либо равно {ge}.",
    "less_than": "Убедитесь, что значение меньше {lt}.",
    "less_than_equal": "Убедитесь, что значение меньше либо равно {le}.",
    "multiple_of": "Убедитесь, что значение кратно {multiple_of}.",
    "finite_number": "Требуется конечное число.",
    "int_type": INTEGER,
    "int_parsing": INTEGER,
    "int_parsing_size": "Слишком большое число.",
    "int_from_float": INTEGER,
    "float_type": NUMBER,
    "float_parsing": NUMBER,
    "decimal_type": NUMBER,
    "decimal_parsing": NUMBER,
    "decimal_max_digits": "Убедитесь, что в числе не более {max_digits} цифр.",
    "decimal_max_places": "Убедитесь, что в числе не более {decimal_places} знаков после запятой.",
    "decimal_whole_digits": "Убедитесь, что в целой части числа не более {whole_digits} цифр.",
    "fraction_type": NUMBER,
    "fraction_parsing": NUMBER,
    "complex_type": NUMBER,
    "complex_str_parsing": NUMBER,
    "bool_type": BOOLEAN,
    "bool_parsing": BOOLEAN,
    # strings and bytes
    "string_type": "Ожидается строка.",
    "string_unicode": "Строка должна быть в кодировке UTF-8.",
    "string_too_short": "Убедитесь, что это поле содержит не менее {min_length} символов.",
    "string_too_long": "Убедитесь, что это поле содержит не более {max_length} символов.",
    "string_pattern_mismatch": "Значение имеет неверный формат.",
    "string_not_ascii": "Допустимы только символы ASCII.",
    "bytes_type": "Ожидается строка.",
    "bytes_too_short": "Убедитесь, что это поле содержит не менее {min_length} байт.",
    "bytes_too_long": "Убедитесь, что это поле содержит не более {max_length} байт.",
    "bytes_invalid_encoding": "Неверная кодировка данных.",
    # choices
    "literal_error": CHOICE,
    "enum": CHOICE,
    "union_tag_invalid": "Недопустимое значение поля {discriminator}. Допустимые значения: {expected_tags}.",
    "union_tag_not_found": "Не указано поле {discriminator}.",
    "missing_sentinel_error": GENERIC,
    "ellipsis_error": GENERIC,
    "is_instance_of": GENERIC,
    "is_subclass_of": GENERIC,
    "callable_type": GENERIC,
    # dates and times
    "date_type": DATE,
    "date_parsing": DATE,
    "date_from_datetime_parsing": DATE,
    "date_from_datetime_inexact": "Ожидается дата без времени.",
    "date_past": "Дата должна быть в прошлом.",
    "date_future": "Дата должна быть в будущем.",
    "time_type": TIME,
    "time_parsing": TIME,
    "datetime_type": DATETIME,
    "datetime_parsing": DATETIME,
    "datetime_object_invalid": DATETIME,
    "datetime_from_date_parsing": DATETIME,
    "datetime_past": "Дата и время должны быть в прошлом.",
    "datetime_future": "Дата и время должны быть в будущем.",
    "timezone_naive": "Дата и время не должны содержать часовой пояс.",
    "timezone_aware": "Укажите часовой пояс (например, Z).",
    "timezone_offset": "Неверный часовой пояс.",
    "time_delta_type": DURATION,
    "time_delta_parsing": DURATION,
    # identifiers
    "uuid_type": UUID,
    "uuid_parsing": UUID,
    "uuid_version": UUID,
    "url_type": URL,
    "url_parsing": URL,
    "url_syntax_violation": URL,
    "url_too_long": "Слишком длинный URL.",
    "url_scheme": "Недопустимая схема URL.",
    # our own validators raise ValueError / assert with a Russian text: shown as written
    "value_error": "{error}",
    "assertion_error": "{error}",
    # validate_call arguments (not used by request bodies, covered so nothing can leak)
    "arguments_type": GENERIC,
    "missing_argument": "Обязательное поле.",
    "unexpected_keyword_argument": "Лишнее поле.",
    "missing_keyword_only_argument": "Обязательное поле.",
    "unexpected_positional_argument": "Лишнее поле.",
    "missing_positional_only_argument": "Обязательное поле.",
    "multiple_argument_values": GENERIC,
}


def _choices(expected: object) -> str:
    # pydantic writes the choices as "'web' or 'mobile'": keep the values, drop the English word.
    return str(expected).replace(" or ", ", ").replace("'", "")


def message_for(item: Mapping[str, Any]) -> str:
    """The Russian message of one pydantic error (an item of `ValidationError.errors()`)."""
    template = MESSAGES.get(item["type"], GENERIC)
    context = dict(item.get("ctx") or {})
    if "error" in context:
        context["error"] = str(context["error"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    for key in ("expected", "expected_tags"):
        if key in context:
            context[key] = _choices(context[key])
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return GENERIC if "{" in template else template


def location(loc: tuple[int | str, ...], skip: int = 0) -> str:
    """`a.b.0` for a nested field, `non_field_errors` for the body as a whole (DRF)."""
    return ".".join(str(part) for part in loc[skip:]) or "non_field_errors"
