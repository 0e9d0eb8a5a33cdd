"""The composition root: the only place that knows which adapters are in use."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.storage.filesystem import FilesystemBlobStore
from api.auth import Authorizer, OpenAuthorizer
from api.settings import Settings
from domain.application import Registry
from domain.ports import BlobStore
from projections.catalog import CatalogProjection, CatalogView
from projections.database import ReadModelDatabase
from projections.references import ReferencesProjection
from projections.runner import ProjectionRunner


@dataclass
class Services:
    settings: Settings
    registry: Registry
    blobs: BlobStore
    db: ReadModelDatabase
    projections: ProjectionRunner
    catalog: CatalogView
    authorizer: Authorizer

    def close(self) -> None:
        self.registry.close()
        self.db.dispose()


def bootstrap(settings: Settings, *, authorizer: Authorizer | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FilesystemBlobStore(settings.blob_root)
    registry = Registry(blobs, env=settings.event_store_env)
    db = ReadModelDatabase.from_url(settings.read_model_url)
    projections = ProjectionRunner(db, registry, [CatalogProjection(), ReferencesProjection()])
    projections.create_tables()
    projections.catch_up()
    return Services(
        settings=settings,
        registry=registry,
        blobs=blobs,
        db=db,
        projections=projections,
        catalog=CatalogView(db),
        authorizer=authorizer or OpenAuthorizer(),
    )
