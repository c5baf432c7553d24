from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "apps.devices"
    label = "devices"
    verbose_name = "Devices: rooms, devices, cue rules and cues"

    def ready(self):
        from apps.streams.panels import control_panel, control_relay

        from . import metrics  # noqa: F401  (cues by status, read at scrape time)
        from .control import cue_relay, device_relay, devices_panel

        # The control room's devices panel and its live messages (docs/devices.md, "Control room").
        control_panel(devices_panel)
        control_relay("cue.sent", "cue.acked", "cue.failed")(cue_relay)
        control_relay("device.status_changed")(device_relay)
