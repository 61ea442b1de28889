"""petstore: an example SDK on stackwire (resources, models, pagination, a stream)."""

from .client import DEFAULT_BASE_URL, AsyncPetstore, Petstore
from .models import Adoption, NewPet, Pet, PetStatus

__all__ = [
    "DEFAULT_BASE_URL",
    "Adoption",
    "AsyncPetstore",
    "NewPet",
    "Pet",
    "PetStatus",
    "Petstore",
]
