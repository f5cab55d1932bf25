"""The OpenAPI 3 document of the REST API, built with apispec (served at /openapi.json, rendered at /docs)."""
from __future__ import annotations

from typing import Any

from apispec import APISpec

API_VERSION = "1.0.0"


def _error(description: str) -> dict[str, Any]:
    """A response that carries the common error body."""
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    """A JSON response with a named schema."""
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _png(description: str) -> dict[str, Any]:
    """A PNG response."""
    return {"description": description, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}


_PRODUCT_ID = {"name": "product_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_SHOPPER_ID = {"name": "product_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "the opaque id /api/intake answered"}
_INDEX = {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
_RATE_LIMITED = _error("Rate limited: retry after the number of seconds in the Retry-After header")
_NOT_READY = _error("The model is not loaded (yet); retry later")
_BUSY = _error("model_not_ready: the model is not loaded (yet); overloaded: the server is at capacity or the request "
               "waited too long (load shedding); both carry Retry-After")
# Every error code the API answers with (errors.py, webapp/server.py for the ones gunicorn's parser raises).
ERROR_CODES = ("bad_request", "missing_field", "empty_file", "invalid_image", "invalid_parameter", "not_found",
               "method_not_allowed", "request_timeout", "payload_too_large", "uri_too_long", "unsupported_media_type",
               "too_many_pixels", "unprocessable", "rate_limited", "headers_too_large", "expectation_failed",
               "forbidden", "photo_unreadable", "internal_error", "not_implemented", "model_not_ready", "overloaded",
               "service_unavailable",
               # "add your product" (POST /api/intake)
               "invalid_json", "invalid_url", "url_not_allowed", "unreachable_url", "fetch_failed", "fetch_timeout",
               "fetch_too_large", "not_html", "no_pictures", "image_too_small")
_PHOTO_UNREADABLE = _error("photo_unreadable: the product's stored photo is missing or damaged (a server fault)")

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object", "required": ["success", "error"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "example": "invalid_image",
                         "enum": list(ERROR_CODES),
                         "description": "one of: " + ", ".join(ERROR_CODES)},
                "message": {"type": "string"}}},
        },
    },
    "ShopperProduct": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "product": {"type": "object", "properties": {
                "id": {"type": "string"}, "title": {"type": "string", "nullable": True},
                "source_url": {"type": "string", "nullable": True},
                "dimensions": {"type": "object", "description": "width_cm, depth_cm, height_cm, diameter_cm, text"},
                "size_known": {"type": "boolean", "description": "a width or diameter is stated: true size possible"},
                "expires_at": {"type": "number", "description": "Unix time"},
                "pictures": {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "width": {"type": "integer"}, "height": {"type": "integer"},
                    "url": {"type": "string"}, "cutout_url": {"type": "string"}}}}}},
        },
    },
    "Detection": {
        "type": "object",
        "properties": {
            "label": {"type": "string", "example": "chair",
                      "description": "a model class, or \"unknown\" when `uncertain` is true"},
            "score": {"type": "number", "description": "mean probability of the label over its pixels"},
            "bbox": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
                     "description": "x0, y0, x1, y1 in input pixels (x1, y1 exclusive)"},
            "area": {"type": "number", "description": "fraction of the image covered by the product"},
            "uncertain": {"type": "boolean", "description": "only from models whose model.json has a `decision`: "
                          "true when the class score is under the threshold chosen on validation; `label` is then "
                          "\"unknown\""},
            "guess": {"type": "string", "description": "only with `uncertain`: the most likely class, also when "
                      "uncertain", "example": "chair"},
            "product_score": {"type": "number", "description": "only with `uncertain`: mean foreground probability "
                              "over the product's pixels (the no-product decision's score)"},
        },
    },
    "Prediction": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Detection"},
                            "description": "empty when no product is found"},
            "mask": {"type": "string", "format": "byte",
                     "description": "base64 PNG, 8-bit alpha (0 background .. 255 product), width x height"},
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "scale": {"type": "number", "description": "mask pixels per upload pixel: 1, or 1/2^k for uploads over "
                                                       "MAX_OUTPUT_PIXELS (bbox and mask are in mask pixels)"},
            "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
            "timing_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
    "Product": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "sku": {"type": "string"}, "name": {"type": "string"},
            "category": {"type": "string", "nullable": True}, "class": {"type": "string", "nullable": True},
            "dimensions": {"type": "object", "properties": {
                "text": {"type": "string", "nullable": True},
                "width_cm": {"type": "number", "nullable": True}, "depth_cm": {"type": "number", "nullable": True},
                "height_cm": {"type": "number", "nullable": True},
                "diameter_cm": {"type": "number", "nullable": True}}},
            "image_url": {"type": "string"}, "cutout_url": {"type": "string"}, "page_url": {"type": "string"},
            "cutout_margin": {"type": "number", "description": "the cut-out's crop margin around the product on "
                              "each side, as a fraction of the product's larger side"},
            "source_url": {"type": "string", "nullable": True},
        },
    },
    "ProductPage": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "products": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
            "page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": {"type": "integer"},
            "pages": {"type": "integer"},
            "classes": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "count": {"type": "integer"}}}},
        },
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/predict": {"post": {
        "summary": "Cut the product out of a photo",
        "description": "Upload a JPEG, PNG or WebP photo (EXIF orientation honoured, any colour mode). "
                       "Returns the mask at the photo's full resolution and the detected product class.",
        "parameters": [
            {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "png", "mask"],
                                                         "default": "json"},
             "description": "json: detections + base64 mask; png: RGBA cut-out; mask: 8-bit mask PNG "
                            "(may also be sent as a form field)"},
            {"name": "crop", "in": "query", "schema": {"type": "boolean", "default": True},
             "description": "format=png only: crop the cut-out to the product plus a margin"},
        ],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["image"],
            "properties": {"image": {"type": "string", "format": "binary"}}}}}},
        "responses": {
            "200": {"description": "Prediction (format=json), cut-out or mask PNG (X-Detected-Class header). Photos over "
                                   "MAX_OUTPUT_PIXELS (12 MP) are answered reduced by a power of two: `width`/`height`"
                                   " are the mask's, `scale` (X-Image-Scale) its pixels per upload pixel",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}},
                                "image/png": {"schema": {"type": "string", "format": "binary"}}}},
            "400": _error("Missing field, empty, corrupt or non-image data, or a bad parameter (also a malformed "
                          "request or chunked body: bad_request)"),
            "408": _error("request_timeout: the request was not complete within REQUEST_READ_TIMEOUT"),
            "413": _error("Upload larger than MAX_CONTENT_LENGTH"),
            "415": _error("Unsupported image type (e.g. GIF) or not multipart/form-data"),
            "422": _error("Too many pixels (decompression-bomb guard)"),
            "429": _RATE_LIMITED,
            "503": _BUSY,
        },
    }},
    "/api/products": {"get": {
        "summary": "List catalogue products",
        "parameters": [
            {"name": "class", "in": "query", "schema": {"type": "string"}, "description": "model class filter"},
            {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "name/sku/category search"},
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
            {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        ],
        "responses": {"200": _json("One page of products", "ProductPage"), "400": _error("Bad paging parameter")},
    }},
    "/api/products/{product_id}": {"get": {
        "summary": "One product (with its detection when the model is ready)",
        "parameters": [_PRODUCT_ID],
        "responses": {"200": _json("The product (`cutout_error` instead of `cutout` when its photo cannot be "
                                   "segmented)", "Product"), "404": _error("No such product")},
    }},
    "/api/products/{product_id}/image": {"get": {
        "summary": "The product's original photo", "parameters": [_PRODUCT_ID],
        "responses": {"200": {"description": "The photo", "content": {"image/jpeg": {}, "image/png": {}}},
                      "404": _error("No such product"), "500": _PHOTO_UNREADABLE},
    }},
    "/api/products/{product_id}/cutout.png": {"get": {
        "summary": "The product's transparent cut-out (cached per image and model)", "parameters": [_PRODUCT_ID],
        "responses": {"200": _png("RGBA cut-out cropped to the product"), "404": _error("No such product"),
                      "429": _RATE_LIMITED, "500": _PHOTO_UNREADABLE, "503": _BUSY},
    }},
    "/api/intake": {"post": {
        "summary": "Add your own product: a product page URL or a photo (private to whoever holds its id)",
        "description": "With `url`, the server fetches the page (http/https to public addresses only; every "
                       "redirect checked; time and size capped), reads the product's title, stated dimensions and "
                       "pictures, and stores up to INTAKE_MAX_PICTURES of them to choose from. With a multipart "
                       "`image` (same formats and limits as /predict), that photo is the product; `width_cm` etc. "
                       "may be sent with it. The product is kept for INTAKE_TTL_HOURS, listed nowhere, and reached "
                       "only through the opaque id in the answer.",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "required": ["url"],
                                            "properties": {"url": {"type": "string", "format": "uri"}}}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "url": {"type": "string", "format": "uri"}, "image": {"type": "string", "format": "binary"},
                "title": {"type": "string"}, "width_cm": {"type": "number"}, "depth_cm": {"type": "number"},
                "height_cm": {"type": "number"}, "diameter_cm": {"type": "number"}}}}}},
        "responses": {
            "201": _json("The new product with its pictures (each with a cut-out URL)", "ShopperProduct"),
            "400": _error("invalid_url, url_not_allowed (a private, loopback, link-local or other non-public "
                          "address), unreachable_url, missing_field, invalid_image, invalid_parameter, invalid_json"),
            "413": _error("fetch_too_large: the page or a picture is larger than FETCH_MAX_BYTES"),
            "415": _error("Unsupported image type"),
            "422": _error("not_html, no_pictures (the page shows no usable product picture), image_too_small, "
                          "too_many_pixels"),
            "429": _RATE_LIMITED,
            "502": _error("fetch_failed: the shop answered an error or could not be reached"),
            "504": _error("fetch_timeout: the shop took too long"),
        },
    }},
    "/api/intake/{product_id}": {
        "get": {"summary": "A shopper's product", "parameters": [_SHOPPER_ID],
                "responses": {"200": _json("The product", "ShopperProduct"),
                              "404": _error("Unknown, deleted or expired")}},
        "delete": {"summary": "Forget a shopper's product now", "parameters": [_SHOPPER_ID],
                   "responses": {"200": {"description": "Deleted"}, "404": _error("Unknown, deleted or expired")}},
    },
    "/api/intake/{product_id}/pictures/{index}": {"get": {
        "summary": "One of the product's stored pictures", "parameters": [_SHOPPER_ID, _INDEX],
        "responses": {"200": {"description": "The picture", "content": {"image/jpeg": {}, "image/png": {},
                                                                       "image/webp": {}}},
                      "404": _error("No such product or picture")},
    }},
    "/api/intake/{product_id}/pictures/{index}/cutout.png": {"get": {
        "summary": "The picture's transparent cut-out (X-Detected-Class: none when no product was found)",
        "parameters": [_SHOPPER_ID, _INDEX],
        "responses": {"200": _png("RGBA cut-out cropped to the product"), "404": _error("No such product or picture"),
                      "503": _NOT_READY},
    }},
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process is alive"}}}},
    "/readyz": {"get": {"summary": "Readiness (model loaded)",
                        "responses": {"200": {"description": "Ready"}, "503": _NOT_READY}}},
    "/metrics": {"get": {"summary": "Prometheus metrics",
                         "responses": {"200": {"description": "Text exposition format",
                                               "content": {"text/plain": {}}}}}},
}


def build_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    spec = APISpec(
        title="RoomFit API", version=API_VERSION, openapi_version="3.0.3",
        info={"description": "Cut furniture and decor products out of photos. Errors are always "
                             '{"success": false, "error": {"code", "message"}}.'},
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    for path, operations in PATHS.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
