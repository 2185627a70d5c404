"""The spec's ``components``: every contract model as a JSON schema, and how to refer to them.

Split from ``contracts.openapi`` so that the operations (``contracts.openapi_operations``) and
the document around them share one way of naming a schema, without either owning the models.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contracts import schemas

SECURITY_SCHEME: Final = "falKey"

_REF: Final = "#/components/schemas/{model}"
_REQUEST_MODELS: Final = (schemas.LipsyncInput, schemas.MultipartComplete, schemas.InitiateUpload)


def ref(name: str) -> dict[str, str]:
    """A JSON reference to a component schema."""
    return {"$ref": _REF.format(model=name)}


def status_union(*names: str) -> dict[str, Any]:
    """``oneOf`` the status models, discriminated by ``status``."""
    models = [getattr(schemas, name) for name in names]
    mapping = {str(m.model_fields["status"].default): _REF.format(model=m.__name__) for m in models}
    return {
        "oneOf": [ref(name) for name in names],
        "discriminator": {"propertyName": "status", "mapping": mapping},
    }


def component_schemas() -> dict[str, Any]:
    """Every model of ``contracts.schemas`` (nested ones included), by name, plus ``QueueStatus``.

    Request models are described in validation mode, the others in serialization mode; pydantic
    suffixes a name with ``-Input``/``-Output`` only if a model used both ways differs between them.
    """
    exported = (getattr(schemas, name) for name in schemas.__all__)
    models = [m for m in exported if isinstance(m, type) and issubclass(m, BaseModel)]
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation" if m in _REQUEST_MODELS else "serialization") for m in models
    ]
    _, top = models_json_schema(pairs, ref_template=_REF)
    defs: dict[str, Any] = dict(top.get("$defs", {}))
    defs["QueueStatus"] = {
        "description": "A request's status: one shape per value of `status`.",
        **status_union("InQueueStatus", "InProgressStatus", "CompletedStatus"),
    }
    return {name: defs[name] for name in sorted(defs)}


def components() -> dict[str, Any]:
    """The ``components`` section: the model schemas and fal's one security scheme."""
    auth = "`Key <FAL_KEY>`, `Key <id>:<secret>` or `Bearer <token>`"
    return {
        "schemas": component_schemas(),
        "securitySchemes": {
            SECURITY_SCHEME: {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": auth,
            }
        },
    }
