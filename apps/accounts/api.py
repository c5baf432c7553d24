from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import user_profile

ShopSerializer = inline_serializer(
    "Shop",
    {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "slug": serializers.CharField(),
        "currency": serializers.CharField(),
    },
    allow_null=True,
    help_text="the creator's shop; null for anyone without one (viewers, staff)",
)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    display_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.ChoiceField(choices=["viewer", "creator", "staff"]))
    time_zone = serializers.CharField(help_text="IANA time zone name; pages and the admin show times in it")
    shop = ShopSerializer


class MeView(APIView):
    """The signed-in user: e-mail, roles, time zone and shop."""

    @extend_schema(responses={200: MeSerializer}, operation_id="me_retrieve")
    def get(self, request):
        return Response(user_profile(user=request.user))
