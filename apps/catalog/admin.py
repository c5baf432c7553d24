from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from creatorcommerce.admin import ShopScopedAdmin, ShopScopedInline, is_staff, user_shop

from .exceptions import InsufficientStock, StockLimitExceeded, StockOwnedByEdge
from .models import SKU, BundleRule, Location, PriceMapping, PriceSource, Product, StockLevel
from .selectors import sku_default_available, skus_with_default_stock
from .services import (
    MAX_STOCK_PER_LEVEL,
    SKU_PRICE_FIELDS,
    bundle_rule_delete,
    bundle_rule_errors,
    bundle_rule_save,
    product_create,
    product_delete,
    product_update,
    sku_add,
    sku_delete,
    sku_update,
    stock_adjust,
)

_INT_MAX = 2**31 - 1  # the stock column's range


class PriceSeenAsLoaded:
    """Price and currency inputs carry the value the page was loaded with (a hidden
    ``initial-<name>`` input), so ``changed_data`` holds only what the user changed, not a
    price the webhook changed while the page was open. A POST without them counts as a change."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in SKU_PRICE_FIELDS:
            field.show_hidden_initial = True
        return field


class CountSeenAsLoaded:
    """A stock count input that carries the count the page showed (``initial-<name>``), so
    that an edit is applied as the difference from it and units sold meanwhile stay sold."""

    count_field = "available"

    def show_loaded_count(self):
        self.fields[self.count_field].show_hidden_initial = True

    def loaded_count(self) -> int:
        """The count the user saw: the page's hidden initial value when it was posted (and
        is a count), else the count as this request loaded it."""
        field = self.fields[self.count_field]
        raw = field.hidden_widget().value_from_datadict(
            self.data, self.files, self.add_initial_prefix(self.count_field)
        )
        try:
            value = field.to_python(raw)
        except ValidationError:
            value = None
        if value is not None and 0 <= value <= _INT_MAX:
            return value
        return self.initial.get(self.count_field) or 0

    def count_delta(self) -> int:
        typed = self.cleaned_data.get(self.count_field)
        return 0 if typed is None else typed - self.loaded_count()


# docs/edge.md, "Who owns what": a venue an edge took over changes stock at the edge only.
OWNED_MESSAGE = "this location's stock is owned by edge node %s; change it at the edge (the cloud mirrors its reports)"


def _owned(node: str) -> str:
    return (OWNED_MESSAGE % node).capitalize() + "."


def stock_change_apply(request, *, sku: SKU, location: Location | None, delta: int) -> StockLevel | None:
    """Add (or remove) ``delta`` units with stock_adjust, as one conditional UPDATE; when it
    is refused, nothing changes and the user is told why. Returns the level, or None if
    refused."""
    try:
        return stock_adjust(sku=sku, location=location, add=delta)
    except StockOwnedByEdge as exc:
        messages.error(request, f"Nothing was changed: {OWNED_MESSAGE % exc.details['node']} ({sku.code} stock).")
        return None
    except (InsufficientStock, StockLimitExceeded) as exc:
        level = StockLevel.objects.filter(sku=sku)
        level = level.filter(location=location) if location else level.filter(location__is_default=True)
        now = level.values_list("available", flat=True).first() or 0
        reason = (
            f"only {now} left now (some sold since the page loaded), so {-delta} cannot be removed"
            if isinstance(exc, InsufficientStock)
            else f"adding {delta} to the {now} there are now would exceed {MAX_STOCK_PER_LEVEL}"
        )
        messages.error(request, f"Nothing was changed: {reason} ({sku.code} stock).")
        return None


class SkuStockForm(CountSeenAsLoaded, forms.ModelForm):
    """A SKU with its stock at the shop's default location, the count buys take from and
    stream pins show (docs/buying.md). A new SKU's "starting stock" is its count; an edit of
    an existing SKU's count is applied as the difference from what the page showed. Both go
    through the catalog's stock service (ProductAdmin.save_formset, SkuAdmin.save_model)."""

    count_field = "stock"
    stock = forms.IntegerField(
        min_value=0,
        max_value=MAX_STOCK_PER_LEVEL,
        required=False,
        help_text="Units at the shop's default location: what buyers and stream pins see.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stock" not in self.fields:
            return
        if self.instance.pk is None:
            self.fields["stock"].label = "Starting stock"
            self.fields["stock"].initial = 0
        else:
            self.fields["stock"].label = "Stock"
            self.initial["stock"] = sku_default_available(sku=self.instance)
            self.show_loaded_count()


class SkuInlineFormSet(forms.BaseInlineFormSet):
    """SKU rows of one product. Their ``shop`` is not a form field (it follows the product),
    so Django cannot check the (shop, code) constraint; this does, as form errors."""

    creator_shop = None  # the creator's own shop; None for staff, who pick the product's shop

    def clean(self):
        super().clean()
        shop_id = self.creator_shop.pk if self.creator_shop is not None else self.instance.shop_id
        deleting = [form for form in self.forms if self.can_delete and self._should_delete_form(form)]
        rows = [form for form in self.forms if form.cleaned_data.get("code") and form not in deleting]
        if shop_id is None or not rows:
            return  # the product form shows its own errors
        repeated = {code for code, n in Counter(form.cleaned_data["code"] for form in rows).items() if n > 1}
        # SKUs deleted in this submission are deleted before the others are saved (see
        # ProductAdmin.save_formset), so their codes may be reused; nothing else is freed early.
        deleted = [form.instance.pk for form in deleting if form.instance.pk is not None]
        holders = dict(
            SKU.objects.filter(shop_id=shop_id, code__in=[form.cleaned_data["code"] for form in rows])
            .exclude(pk__in=deleted)
            .values_list("code", "pk")
        )
        for form in rows:
            code = form.cleaned_data["code"]
            if code in repeated:
                form.add_error("code", "This code is given to more than one SKU here.")
            elif holders.get(code, form.instance.pk) != form.instance.pk:
                form.add_error("code", "Another SKU of this shop already has this code.")


class SkuInline(PriceSeenAsLoaded, ShopScopedInline):
    model = SKU
    form = SkuStockForm
    formset = SkuInlineFormSet
    fields = ("code", "title", "price", "currency", "stock", "per_buyer_limit", "is_active")
    exclude = ("shop",)

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0  # a new product starts with one SKU row to fill in

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        creator_shop = None if is_staff(request.user) else user_shop(request.user)
        shop = obj.shop if obj is not None else creator_shop
        if shop is not None and "currency" in formset.form.base_fields:
            # New rows start in the shop's currency (fields are built afresh per call).
            formset.form.base_fields["currency"].initial = shop.currency
        return type(formset.__name__, (formset,), {"creator_shop": creator_shop})


@admin.register(Product)
class ProductAdmin(ShopScopedAdmin):
    list_display = ("title", "shop", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("title", "skus__code")
    inlines = [SkuInline]

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        if change:
            product_update(product=obj, changed=form.changed_data)
        else:
            fields = {name: getattr(obj, name) for name in ("title", "description", "image_url", "is_active")}
            obj.pk = product_create(shop=obj.shop, skus=[], **fields).pk

    # Deleting from the product's page or the list goes through the service (sku.deleted for
    # each SKU, so stream pages drop their pins; product.deleted).
    def delete_model(self, request, obj):
        product_delete(product=obj)

    def delete_queryset(self, request, queryset):
        for product in queryset.order_by("pk"):
            product_delete(product=product)

    def save_formset(self, request, form, formset, change):
        if formset.model is not SKU:
            return super().save_formset(request, form, formset, change)
        # SKUs belong to the product's shop; creators never pick it. Deletions go first so a
        # code freed by one can be reused by another row of the same submission.
        formset.save(commit=False)
        for obj in formset.deleted_objects:
            sku_delete(sku=obj)
        for obj, changed in formset.changed_objects:
            moved = obj.shop_id != form.instance.shop_id
            obj.shop = form.instance.shop
            sku_update(sku=obj, changed=[*changed, "shop"] if moved else changed)
        new = {id(obj) for obj in formset.new_objects}
        stock_changes = []
        for sku_form in formset.forms:
            sku = sku_form.instance
            if id(sku) in new:
                # With its stock row at the default location holding the starting stock (0
                # when left blank).
                sku_add(product=form.instance, sku=sku, stock=sku_form.cleaned_data.get("stock") or 0)
            elif sku.pk is not None and "stock" in sku_form.changed_data and (delta := sku_form.count_delta()):
                # (A row deleted above has no pk any more.)
                stock_changes.append((sku, delta))
        # Stock rows in id order, as buys lock them (docs/pricing.md, "Claims"): this save is
        # one transaction, and several rows locked in another order could deadlock with a
        # multi-line buy.
        rows = dict(
            StockLevel.objects.filter(sku__in=[sku for sku, _ in stock_changes], location__is_default=True).values_list(
                "sku_id", "pk"
            )
        )
        for sku, delta in sorted(stock_changes, key=lambda change: (rows.get(change[0].pk, 0), change[0].pk)):
            stock_change_apply(request, sku=sku, location=None, delta=delta)
        formset.save_m2m()


@admin.register(Location)
class LocationAdmin(ShopScopedAdmin):
    list_display = ("name", "kind", "shop", "is_default", "owned_by")
    list_filter = ("kind",)
    readonly_fields = ("owned_by",)

    @admin.display(description="stock owned by")
    def owned_by(self, obj):
        return f"edge node {obj.owner_node}" if obj.owner_node else "this node"


class StockLevelForm(CountSeenAsLoaded, forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "available" not in self.fields:
            return
        if self.instance.pk is not None:
            # The count the page showed goes back with the POST (``initial-available``): an
            # edit is applied as the difference from it, keeping sales made meanwhile.
            self.show_loaded_count()
        else:
            self.fields["available"].help_text = (
                "If the SKU already has a stock level at this location (every SKU gets one at "
                "the default location), its count is set to this number."
            )

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if self.instance.pk is None:
            # A new row for a (SKU, location) pair that has one already is not an error: it
            # sets that row's count (StockLevelAdmin.save_model, through stock_adjust). Every
            # SKU has a row at its default location from the moment it is created.
            exclude.add("sku")
        return exclude

    def clean_available(self):
        available = self.cleaned_data["available"]
        if available is not None and available > MAX_STOCK_PER_LEVEL:
            raise forms.ValidationError(
                "At most %(limit)s units per stock level.", code="max_value", params={"limit": MAX_STOCK_PER_LEVEL}
            )
        return available

    def clean(self):
        cleaned = super().clean()
        sku, location = cleaned.get("sku"), cleaned.get("location")
        if sku is not None and location is not None and location.shop_id != sku.shop_id:
            self.add_error("location", "This location belongs to another shop than the SKU.")
        elif location is not None and location.owner_node and self.instance.pk is None:
            self.add_error("location", _owned(location.owner_node))
        return cleaned


@admin.register(StockLevel)
class StockLevelAdmin(ShopScopedAdmin):
    """Stock counts. Edits go through the same service as the API (conditional updates and a
    ``stock.changed`` event), never a plain save."""

    form = StockLevelForm
    list_display = ("sku", "location", "sold_from_here", "available", "updated_at")
    list_select_related = ("sku", "location")
    search_fields = ("sku__code",)
    fields = ("sku", "location", "available")

    @admin.display(description="Buys and pins", boolean=True, ordering="location__is_default")
    def sold_from_here(self, obj):
        """Buys take from, and stream pins show, the default location's count only."""
        return obj.location.is_default

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        shop = user_shop(request.user)
        if shop is not None and "location" not in initial:
            default = Location.objects.filter(shop=shop, is_default=True).values_list("pk", flat=True).first()
            if default is not None:
                initial["location"] = default
        return initial

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.location.owner_node:
            return ("sku", "location", "available")  # the edge's: read-only here
        return ("sku", "location") if obj else ()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        level = self.get_object(request, object_id)
        if level is not None and level.location.owner_node and request.method == "GET":
            messages.warning(request, _owned(level.location.owner_node))
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change and obj.location.owner_node:
            messages.error(request, f"Nothing was changed: {OWNED_MESSAGE % obj.location.owner_node}.")
            obj._stock_refused = True
            return
        if not change:  # a new row: the typed count is the count
            level = stock_adjust(sku=obj.sku, location=obj.location, set_to=obj.available)
            obj.pk, obj.version = level.pk, level.version
            return
        # An edit adds or removes the difference from what the page showed, as one
        # conditional UPDATE: units sold since the page loaded stay sold.
        delta = form.count_delta()
        if delta == 0:
            obj.available = StockLevel.objects.values_list("available", flat=True).get(pk=obj.pk)
            return
        level = stock_change_apply(request, sku=obj.sku, location=obj.location, delta=delta)
        if level is None:
            obj.available = StockLevel.objects.values_list("available", flat=True).get(pk=obj.pk)
            obj._stock_refused = True
            return
        obj.available, obj.version = level.available, level.version

    def log_change(self, request, obj, message):
        if not getattr(obj, "_stock_refused", False):
            return super().log_change(request, obj, message)

    def response_change(self, request, obj):
        if getattr(obj, "_stock_refused", False):
            return HttpResponseRedirect(request.path)  # the page again, with the count as it is
        return super().response_change(request, obj)


@admin.register(SKU)
class SkuAdmin(PriceSeenAsLoaded, ShopScopedAdmin):
    form = SkuStockForm
    list_display = ("code", "product", "price", "currency", "stock", "per_buyer_limit", "is_active")
    list_select_related = ("product",)
    search_fields = ("code", "product__title")
    list_filter = ("is_active",)

    def get_queryset(self, request):
        return skus_with_default_stock(super().get_queryset(request))

    @admin.display(description="Stock", ordering="default_available")
    def stock(self, obj):
        return obj.default_available or 0

    def has_add_permission(self, request):
        return False  # SKUs are added on their product's page

    # Deletions through the service: sku.deleted, so stream pages that pinned it drop it.
    def delete_model(self, request, obj):
        sku_delete(sku=obj)

    def delete_queryset(self, request, queryset):
        for sku in queryset.order_by("pk"):
            sku_delete(sku=sku)

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # A creator's SKUs come from their own shop only (get_queryset), so their ``shop``
        # is already the creator's; staff may change it, and then it is in changed_data.
        sku_update(sku=obj, changed=form.changed_data)
        if "stock" in form.changed_data and (delta := form.count_delta()):
            stock_change_apply(request, sku=obj, location=None, delta=delta)


class PriceMappingInline(ShopScopedInline):
    model = PriceMapping
    fields = ("external_id", "sku")


@admin.register(PriceSource)
class PriceSourceAdmin(ShopScopedAdmin):
    """Price trackers allowed to post to /hooks/price/?source=<public id>."""

    list_display = ("name", "shop", "public_id", "is_active", "created_at")
    readonly_fields = ("public_id", "secret", "webhook_url")
    inlines = [PriceMappingInline]

    @admin.display(description="Webhook URL")
    def webhook_url(self, obj):
        return f"/hooks/price/?source={obj.public_id}" if obj.pk else "(saved first)"


class BundleRuleForm(forms.ModelForm):
    """A bundle rule with its complementary SKUs as one multiple choice (the creator's own
    SKUs only); what ``bundle_rule_errors`` finds wrong shows as field errors."""

    items = forms.ModelMultipleChoiceField(
        queryset=SKU.objects.none(),
        label="Complementary SKUs",
        help_text="One unit of each comes with one unit of the anchor.",
    )

    class Meta:
        model = BundleRule
        fields = ("shop", "label", "anchor", "price", "percent", "trigger", "threshold", "venue", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.fields["items"].initial = [item.sku_id for item in self.instance.items.all()]

    def _post_clean(self):
        super()._post_clean()
        rule = self.instance
        if rule.shop_id is None:
            return  # staff left the shop empty: that field's error says so
        if rule.anchor_id is None and "anchor" not in self.errors:
            return
        errors = bundle_rule_errors(rule=rule, items=list(self.cleaned_data.get("items") or []))
        for field, message in errors.items():
            if field in self.errors:
                continue
            self.add_error(field if field in self.fields else None, message)


@admin.register(BundleRule)
class BundleRuleAdmin(ShopScopedAdmin):
    """Smart bundles (docs/geofences.md), saved and deleted through the services
    (``bundle.*`` events: storefronts follow)."""

    form = BundleRuleForm
    list_display = ("label", "anchor", "trigger", "threshold", "venue", "price", "percent", "is_active")
    list_filter = ("trigger", "is_active")
    fields = ("shop", "label", "anchor", "items", "price", "percent", "trigger", "threshold", "venue", "is_active")

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [f for f in fields if f != "shop"] if not is_staff(request.user) else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        skus = SKU.objects.select_related("product").order_by("code")
        if not is_staff(request.user):
            skus = skus.filter(shop=user_shop(request.user))
        elif obj is not None:
            skus = skus.filter(shop_id=obj.shop_id)
        form.base_fields["items"].queryset = skus
        if "venue" in form.base_fields:
            form.base_fields["venue"].queryset = form.base_fields["venue"].queryset.filter(kind=Location.Kind.VENUE)
        return form

    def save_model(self, request, obj, form, change):
        self.assign_shop(request, obj)
        saved = bundle_rule_save(rule=obj, items=list(form.cleaned_data["items"]))
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        pass  # the items were saved with the rule (bundle_rule_save)

    def delete_model(self, request, obj):
        bundle_rule_delete(rule=obj)

    def delete_queryset(self, request, queryset):
        for rule in queryset.order_by("pk"):
            bundle_rule_delete(rule=rule)
