/* The OAuth2 provider presets and what an account makes of them (oauth2.h): apart from
 * oauth2.c so that what only reads the configuration (config.c, the lean `alcode`) does not
 * pull libcurl and jansson in. */
#include "oauth2.h"

static const OAuth2Preset presets[] = {
        {
                .name = "microsoft",
                .display = "Microsoft (Outlook.com, Hotmail, Live)",
                .authorize_url = "https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize",
                .token_url = "https://login.microsoftonline.com/consumers/oauth2/v2.0/token",
                .device_url = "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode",
                .scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
                /* Entra ID: "Mobile and desktop applications" take http://localhost, any port. */
                .redirect_host = "localhost",
        },
        {
                .name = "google",
                .display = "Google (Gmail)",
                .authorize_url = "https://accounts.google.com/o/oauth2/v2/auth",
                .token_url = "https://oauth2.googleapis.com/token",
                .device_url = NULL, /* Google's device grant does not allow the mail scope */
                .scope = "https://mail.google.com/",
                .needs_secret = true,
        },
};

const OAuth2Preset *oauth2_preset(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(presets); i++)
                if (strcaseeq(presets[i].name, name))
                        return &presets[i];
        return NULL;
}

const OAuth2Preset *oauth2_preset_for_host(const char *host) {
        if (!host)
                return NULL;
        if (strcaseeq(host, "outlook.office365.com") || strcaseeq(host, "imap-mail.outlook.com") ||
            strcaseeq(host, "outlook.office.com"))
                return oauth2_preset("microsoft");
        if (strcaseeq(host, "imap.gmail.com"))
                return oauth2_preset("google");
        return NULL;
}

int oauth2_client_from_account(const Account *a, OAuth2Client *ret) {
        const OAuth2Preset *p = oauth2_preset(a->oauth2_provider);

        *ret = (OAuth2Client) {
                .client_id = a->oauth2_client_id,
                .client_secret = a->oauth2_client_secret,
                .authorize_url = a->oauth2_authorize_url ?: p ? p->authorize_url : NULL,
                .token_url = a->oauth2_token_url ?: p ? p->token_url : NULL,
                .device_url = a->oauth2_device_url ?: p ? p->device_url : NULL,
                .scope = a->oauth2_scope ?: p ? p->scope : NULL,
                .redirect_host = p ? p->redirect_host : NULL,
                .ca_file = a->ca_file,
        };
        return ret->client_id && ret->token_url ? 0 : -EINVAL;
}
