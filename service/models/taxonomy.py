"""ESCO taxonomy: small reference tables, replaced wholesale by an import, never by the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import ReuseLevel, SkillCollection, SkillType, check_in

NORMALIZED = "passport_normalize(label)"


class Competence(Base):
    """An ESCO skill/knowledge concept or skill group, identified by its URI."""

    __tablename__ = "competences"
    __table_args__ = (
        CheckConstraint("concept_type IN ('skill', 'skill_group')", name="concept_type"),
        CheckConstraint(
            f"skill_type IS NULL OR {check_in('skill_type', SkillType)}", name="skill_type"
        ),
        CheckConstraint(
            f"reuse_level IS NULL OR {check_in('reuse_level', ReuseLevel)}", name="reuse_level"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    uri: Mapped[str] = mapped_column(Text, unique=True)
    concept_type: Mapped[str] = mapped_column(Text)
    skill_type: Mapped[str | None] = mapped_column(Text)
    reuse_level: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text)
    preferred_labels: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    descriptions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(Text, server_default="released")


class CompetenceLabel(Base):
    """Every label in every language, normalized (lower case, no accents) for search."""

    __tablename__ = "competence_labels"
    __table_args__ = (
        CheckConstraint("kind IN ('preferred', 'alternative', 'hidden')", name="kind"),
        UniqueConstraint("competence_id", "lang", "kind", "label"),
        Index(
            "ix_competence_labels_norm_trgm",
            "norm",
            postgresql_using="gin",
            postgresql_ops={"norm": "gin_trgm_ops"},
        ),
        Index(
            "ix_competence_labels_norm_prefix", "norm", postgresql_ops={"norm": "text_pattern_ops"}
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    competence_id: Mapped[int] = mapped_column(
        ForeignKey("competences.id", ondelete="CASCADE"), index=True
    )
    lang: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    norm: Mapped[str] = mapped_column(Text, Computed(NORMALIZED, persisted=True))


class CompetenceBroader(Base):
    """The ESCO skill hierarchy: a concept and a broader concept (skill or group)."""

    __tablename__ = "competence_broader"

    competence_id: Mapped[int] = mapped_column(
        ForeignKey("competences.id", ondelete="CASCADE"), primary_key=True
    )
    broader_id: Mapped[int] = mapped_column(
        ForeignKey("competences.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CompetenceCollection(Base):
    __tablename__ = "competence_collections"
    __table_args__ = (CheckConstraint(check_in("collection", SkillCollection), name="collection"),)

    competence_id: Mapped[int] = mapped_column(
        ForeignKey("competences.id", ondelete="CASCADE"), primary_key=True
    )
    collection: Mapped[str] = mapped_column(Text, primary_key=True)


class IscoGroup(Base):
    __tablename__ = "isco_groups"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    uri: Mapped[str] = mapped_column(Text, unique=True)
    preferred_labels: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    descriptions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class Occupation(Base):
    __tablename__ = "occupations"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    uri: Mapped[str] = mapped_column(Text, unique=True)
    code: Mapped[str | None] = mapped_column(Text)
    isco_group: Mapped[str | None] = mapped_column(Text)
    preferred_labels: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    descriptions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class OccupationLabel(Base):
    __tablename__ = "occupation_labels"
    __table_args__ = (
        CheckConstraint("kind IN ('preferred', 'alternative', 'hidden')", name="kind"),
        UniqueConstraint("occupation_id", "lang", "kind", "label"),
        Index(
            "ix_occupation_labels_norm_trgm",
            "norm",
            postgresql_using="gin",
            postgresql_ops={"norm": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    occupation_id: Mapped[int] = mapped_column(
        ForeignKey("occupations.id", ondelete="CASCADE"), index=True
    )
    lang: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    norm: Mapped[str] = mapped_column(Text, Computed(NORMALIZED, persisted=True))


class OccupationCompetence(Base):
    __tablename__ = "occupation_competences"
    __table_args__ = (
        CheckConstraint("relation IN ('essential', 'optional')", name="relation"),
        Index("ix_occupation_competences_competence", "competence_id", "occupation_id"),
    )

    occupation_id: Mapped[int] = mapped_column(
        ForeignKey("occupations.id", ondelete="CASCADE"), primary_key=True
    )
    competence_id: Mapped[int] = mapped_column(
        ForeignKey("competences.id", ondelete="CASCADE"), primary_key=True
    )
    relation: Mapped[str] = mapped_column(Text)


class TaxonomyImport(Base):
    __tablename__ = "taxonomy_imports"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    esco_version: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)
