"""``POST /sync/v1/batches``: an edge's signed batch in (docs/edge.md, "Ingest");
``GET /sync/v1/catalog``: an edge's catalog out (docs/edge.md, "Catalog to the edge")."""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from creatorcommerce.errors import DomainError

from .services import batch_ingest


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@csrf_exempt  # authenticated by the node's signature over the body, never by a cookie
@require_POST
def batches(request):
    if settings.NODE_ROLE != "cloud":
        return _error(404, "not_found", "Only a cloud node accepts sync batches.")
    if request.content_type != "application/jose":
        return _error(415, "unsupported_media_type", "A batch is sent as Content-Type: application/jose.")
    body = request.body
    if len(body) > settings.SYNC_MAX_BODY_BYTES:
        return _error(413, "too_large", f"A batch is at most {settings.SYNC_MAX_BODY_BYTES} bytes.")
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return _error(400, "invalid_batch", "A batch is a JWS compact token (ASCII).")
    try:
        answer = batch_ingest(token=token)
    except DomainError as exc:
        return JsonResponse({"code": exc.code, "message": exc.message, **exc.details}, status=exc.status)
    return JsonResponse(answer)


@require_GET
def catalog(request):
    if settings.NODE_ROLE != "cloud":
        return _error(404, "not_found", "Only a cloud node serves catalogs.")
    from .catalog import catalog_serve

    try:
        document = catalog_serve(authorization=request.headers.get("Authorization"), path=request.path)
    except DomainError as exc:
        return JsonResponse({"code": exc.code, "message": exc.message, **exc.details}, status=exc.status)
    return JsonResponse(document)
