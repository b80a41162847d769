"""A small REST client for the CLI's submit / status / cancel / users commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from search_spaces import UserError


class ClientSettings(BaseSettings):
    """NAS_URL and NAS_TOKEN: the server and the API token the CLI's service commands use."""

    model_config = SettingsConfigDict(env_prefix="NAS_", extra="ignore")
    url: str = "http://127.0.0.1:8000"
    token: str | None = None


class ClientError(UserError):
    """The server refused a request (the message is the server's), or could not be reached."""


class Client:
    def __init__(self, url: str | None = None, token: str | None = None):
        env = ClientSettings()
        self.url = (url or env.url).rstrip("/")
        self.token = token or env.token
        if not self.token:
            raise ClientError("no API token: set NAS_TOKEN or pass --token")
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise ClientError(f"cannot reach {self.url}: {err}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ClientError(f"{r.status_code}: {detail}")
        return r.json() if r.content else None

    def upload_dataset(self, path: Path) -> str:
        if not path.is_file():
            raise ClientError(f"npz file not found: {path}")
        with open(path, "rb") as f:
            return self._call("POST", "/api/v1/datasets", files={"file": (path.name, f)})["path"]

    def submit(self, config: dict, name: str = "") -> dict:
        return self._call("POST", "/api/v1/searches", json=config, params={"name": name})

    def search(self, search_id: str) -> dict:
        return self._call("GET", f"/api/v1/searches/{search_id}")

    def searches(self) -> list[dict]:
        return self._call("GET", "/api/v1/searches", params={"limit": 100})["items"]

    def cancel(self, search_id: str) -> dict:
        return self._call("POST", f"/api/v1/searches/{search_id}/cancel")

    def create_user(self, name: str, is_admin: bool = False) -> dict:
        return self._call("POST", "/api/v1/users", json={"name": name, "is_admin": is_admin})
