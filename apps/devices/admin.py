"""Rooms, devices and cue rules for creators (their shop's only; the device, stream, SKU and
venue choices their own, scoped by ShopScopedAdmin), written through the services; cues
read-only (docs/devices.md)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from creatorcommerce.admin import ServiceCheckedForm, ShopScopedAdmin, ShopScopedReadOnlyAdmin, StaffShopColumn

from .models import Cue, CueRule, Device, Room
from .services import (
    RULE_FIELDS,
    cue_rule_errors,
    cue_rule_save,
    device_create,
    device_reset_password,
    device_set_active,
    device_update,
    mqtt_id_problem,
    room_create,
    room_update,
)


@admin.register(Room)
class RoomAdmin(StaffShopColumn, ShopScopedAdmin):
    list_display = ("name", "venue")
    list_select_related = ("shop", "venue")

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        if change:
            room_update(room=obj, name=obj.name, venue=obj.venue)
        else:
            saved = room_create(shop=obj.shop, name=obj.name, venue=obj.venue)
            obj.pk = saved.pk
            obj._state.adding = False


class DeviceForm(forms.ModelForm):
    def clean_mqtt_id(self):
        mqtt_id = self.cleaned_data.get("mqtt_id")
        problem = mqtt_id_problem(mqtt_id)
        if problem is not None:
            raise forms.ValidationError(problem[1], code=problem[0])
        return mqtt_id


@admin.register(Device)
class DeviceAdmin(StaffShopColumn, ShopScopedAdmin):
    """Its MQTT password is shown once, when the device is added or its password reset. The
    broker takes a new password, or stops letting a disabled device in, once ``mqtt_auth``
    has rewritten its files (docs/devices.md, "Broker security")."""

    form = DeviceForm
    shop_path = "room__shop"
    list_display = ("name", "room", "kind", "mqtt_id", "is_active", "online", "last_seen")
    list_filter = ("kind", "is_active", "online")
    list_select_related = ("room__shop",)
    actions = ["reset_password", "disable", "enable"]

    def get_readonly_fields(self, request, obj=None):
        readonly = ("is_active", "online", "last_seen")
        return (*readonly, "kind", "mqtt_id") if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        if change:
            device_update(device=Device.objects.select_related("room").get(pk=obj.pk), name=obj.name, room=obj.room)
            return
        saved, password = device_create(room=obj.room, name=obj.name, kind=obj.kind, mqtt_id=obj.mqtt_id)
        obj.pk = saved.pk
        obj._state.adding = False
        messages.warning(request, f"MQTT password of {saved.mqtt_id} (shown once, stored hashed): {password}")

    @admin.action(description="Reset the MQTT password (shown once)")
    def reset_password(self, request, queryset):
        for device in queryset:
            password = device_reset_password(device=device)
            messages.warning(request, f"New MQTT password of {device.mqtt_id}: {password}")
        messages.info(request, "The broker takes it once its files are written again (manage.py mqtt_auth).")

    @admin.action(description="Disable (no cues; the broker lets it in no more)")
    def disable(self, request, queryset):
        for device in queryset:
            device_set_active(device=device, active=False)
        messages.info(request, "The broker refuses them once its files are written again (manage.py mqtt_auth).")

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        for device in queryset:
            device_set_active(device=device, active=True)


class CueRuleForm(ServiceCheckedForm):
    service_fields = RULE_FIELDS

    class Meta:
        model = CueRule
        fields = ("shop", *RULE_FIELDS)

    def service_errors(self, *, shop, fields):
        return cue_rule_errors(shop=shop, fields=fields)


@admin.register(CueRule)
class CueRuleAdmin(StaffShopColumn, ShopScopedAdmin):
    form = CueRuleForm
    list_display = ("event_type", "device", "kind", "stream", "sku", "available_at_most", "priority", "is_active")
    list_filter = ("event_type", "kind", "is_active")
    list_select_related = ("shop", "device", "stream", "sku")

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        fields = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        saved = cue_rule_save(shop=obj.shop, rule=CueRule.objects.get(pk=obj.pk) if change else None, **fields)
        obj.pk = saved.pk
        obj._state.adding = False


@admin.register(Cue)
class CueAdmin(StaffShopColumn, ShopScopedReadOnlyAdmin):
    shop_path = "device__room__shop"
    list_display = ("pk", "device", "kind", "event_type", "status", "issued_at", "latency_ms", "detail")
    list_filter = ("status", "kind", "event_type")
    list_select_related = ("device__room__shop",)
