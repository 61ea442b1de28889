"""The API's models: msgspec Structs through `stackwire.Model` (unknown fields ignored)."""

from __future__ import annotations

from typing import Literal

import msgspec

import stackwire

PetStatus = Literal["available", "pending", "adopted"]


class Pet(stackwire.Model):
    id: int
    name: str
    status: PetStatus = "available"
    tags: list[str] = msgspec.field(default_factory=list)


class NewPet(stackwire.Model):
    name: str
    tags: list[str] = msgspec.field(default_factory=list)


class Adoption(stackwire.Model):
    """One event of the adoption feed (Server-Sent Events)."""

    pet_id: int
    adopter: str
