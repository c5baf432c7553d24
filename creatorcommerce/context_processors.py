from django.conf import settings


def site(request):
    return {
        "NODE_ROLE": settings.NODE_ROLE,
        "NODE_ID": settings.NODE_ID,
        "GEO_SIMULATE_POSITION": settings.GEO_SIMULATE_POSITION,
    }
