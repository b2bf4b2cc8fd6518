from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "customer_number", "first_name", "last_name", "billing_country",
                    "is_staff"]
    search_fields = ["email", "customer_number", "first_name", "last_name"]
    readonly_fields = ["customer_number", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password", "customer_number"]}),
        ("Profil", {"fields": ["first_name", "last_name", "billing_country",
                               "preferred_language"]}),
        ("Droits", {"fields": ["is_active", "is_staff", "is_superuser", "groups",
                               "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
