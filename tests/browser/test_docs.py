"""/docs in headless Chromium: Authorize with a bearer token, then "Try it out" on a protected operation."""

from __future__ import annotations

from tests.browser.conftest import Browser
from tests.conftest import AppFactory, UserFactory

# Swagger UI 5's own markup: the operation block of GET /api/auth/me/ and its parts.
OPERATION = "[...document.querySelectorAll('.opblock-get')].find(b => b.querySelector('.opblock-summary-path')" \
            "?.getAttribute('data-path') === '/api/auth/me/')"


async def test_docs_authorize_then_try_a_protected_operation(make_client: AppFactory, make_user: UserFactory,
                                                             browser: Browser) -> None:
    client = await make_client()
    user = await make_user(role="driver", name="Anna", surname="Kuznetsova")
    await browser.get(str(client.make_url("/docs")))
    await browser.until("return document.querySelector('.btn.authorize')", within=15, what="Swagger UI loaded")
    assert await browser.js("return document.getElementById('asyncapi-link').getAttribute('href')") == "/asyncapi.json"

    await browser.click(".btn.authorize")
    await browser.until("return document.querySelector('.modal-ux input[type=text], .modal-ux input:not([type])')",
                        what="authorize dialog")
    # The first scheme of the dialog is `bearer` (components.securitySchemes order).
    await browser.type_into(".modal-ux .auth-container input", user.token)
    await browser.click(".modal-ux .auth-container .btn.modal-btn.auth.authorize")
    await browser.until("return document.querySelector('.modal-ux .auth-container .btn.modal-btn.auth')"
                        "?.textContent.trim() === 'Logout'", what="bearer authorized")
    await browser.click(".modal-ux .btn-done, .modal-ux .close-modal")

    await browser.js(f"{OPERATION}.querySelector('.opblock-summary-control').click()")
    await browser.until(f"return {OPERATION}.querySelector('.try-out__btn')", what="operation expanded")
    await browser.js(f"{OPERATION}.querySelector('.try-out__btn').click()")
    await browser.until(f"return {OPERATION}.querySelector('.btn.execute')", what="execute button")
    await browser.js(f"{OPERATION}.querySelector('.btn.execute').click()")
    status = await browser.until(f"return {OPERATION}.querySelector('.live-responses-table tbody .response-col_status')"
                                 "?.textContent.trim()", what="a live response")
    assert status.startswith("200"), status
    body = await browser.js(f"return {OPERATION}.querySelector('.live-responses-table tbody .response-col_description')"
                            ".textContent")
    assert '"Anna"' in body and user.login in body
    await browser.js(f"{OPERATION}.querySelector('.live-responses-table').scrollIntoView({{block: 'center'}})")
    await browser.screenshot("docs-try-it-out")
