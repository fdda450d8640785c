"""ESCO taxonomy tables, with accent- and case-insensitive trigram search on labels.

Revision ID: 0001_taxonomy
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0001_taxonomy"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NORMALIZED = "passport_normalize(label)"


def _labels_table(name: str, owner: str, owner_table: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            owner,
            sa.Integer(),
            sa.ForeignKey(
                f"{owner_table}.id", ondelete="CASCADE", name=f"fk_{name}_{owner}_{owner_table}"
            ),
            nullable=False,
        ),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("norm", sa.Text(), sa.Computed(NORMALIZED, persisted=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('preferred', 'alternative', 'hidden')", name=op.f(f"ck_{name}_kind")
        ),
        sa.UniqueConstraint(owner, "lang", "kind", "label", name=f"uq_{name}_{owner}"),
    )
    op.create_index(f"ix_{name}_{owner}", name, [owner])
    op.create_index(
        f"ix_{name}_norm_trgm",
        name,
        ["norm"],
        postgresql_using="gin",
        postgresql_ops={"norm": "gin_trgm_ops"},
    )


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # unaccent() is only STABLE (its dictionary could change); pinning the dictionary makes this
    # wrapper safe to declare IMMUTABLE, so it can feed generated columns and indexes.
    op.execute(
        """
        CREATE FUNCTION passport_normalize(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
        $$ SELECT btrim(regexp_replace(lower(public.unaccent('public.unaccent'::regdictionary, $1)),
                                       '\\s+', ' ', 'g')) $$
        """
    )
    op.create_table(
        "competences",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("concept_type", sa.Text(), nullable=False),
        sa.Column("skill_type", sa.Text()),
        sa.Column("reuse_level", sa.Text()),
        sa.Column("code", sa.Text()),
        sa.Column("preferred_labels", pg.JSONB(), server_default="{}", nullable=False),
        sa.Column("descriptions", pg.JSONB(), server_default="{}", nullable=False),
        sa.Column("status", sa.Text(), server_default="released", nullable=False),
        sa.CheckConstraint(
            "concept_type IN ('skill', 'skill_group')", name=op.f("ck_competences_concept_type")
        ),
        sa.CheckConstraint(
            "skill_type IS NULL OR skill_type IN ('knowledge', 'skill_competence')",
            name=op.f("ck_competences_skill_type"),
        ),
        sa.CheckConstraint(
            "reuse_level IS NULL OR reuse_level IN "
            "('transversal', 'cross_sector', 'sector_specific', 'occupation_specific')",
            name=op.f("ck_competences_reuse_level"),
        ),
        sa.UniqueConstraint("uri", name="uq_competences_uri"),
    )
    _labels_table("competence_labels", "competence_id", "competences")
    op.create_index(
        "ix_competence_labels_norm_prefix",
        "competence_labels",
        ["norm"],
        postgresql_ops={"norm": "text_pattern_ops"},
    )
    op.create_table(
        "competence_broader",
        sa.Column(
            "competence_id",
            sa.Integer(),
            sa.ForeignKey("competences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "broader_id",
            sa.Integer(),
            sa.ForeignKey(
                "competences.id",
                ondelete="CASCADE",
                name="fk_competence_broader_broader_id_competences",
            ),
            primary_key=True,
        ),
    )
    op.create_index("ix_competence_broader_broader_id", "competence_broader", ["broader_id"])
    op.create_table(
        "competence_collections",
        sa.Column(
            "competence_id",
            sa.Integer(),
            sa.ForeignKey("competences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("collection", sa.Text(), primary_key=True),
        sa.CheckConstraint(
            "collection IN ('transversal', 'digital', 'green', 'language', 'research', 'digcomp')",
            name=op.f("ck_competence_collections_collection"),
        ),
    )
    op.create_table(
        "isco_groups",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("preferred_labels", pg.JSONB(), server_default="{}", nullable=False),
        sa.Column("descriptions", pg.JSONB(), server_default="{}", nullable=False),
        sa.UniqueConstraint("uri", name="uq_isco_groups_uri"),
    )
    op.create_table(
        "occupations",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("code", sa.Text()),
        sa.Column("isco_group", sa.Text()),
        sa.Column("preferred_labels", pg.JSONB(), server_default="{}", nullable=False),
        sa.Column("descriptions", pg.JSONB(), server_default="{}", nullable=False),
        sa.UniqueConstraint("uri", name="uq_occupations_uri"),
    )
    _labels_table("occupation_labels", "occupation_id", "occupations")
    op.create_table(
        "occupation_competences",
        sa.Column(
            "occupation_id",
            sa.Integer(),
            sa.ForeignKey("occupations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "competence_id",
            sa.Integer(),
            sa.ForeignKey("competences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("relation", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "relation IN ('essential', 'optional')", name=op.f("ck_occupation_competences_relation")
        ),
    )
    # Typo search: labels word-similar to the (normalized) query, of competences none of whose
    # labels contain it (those rank higher and come from the substring search). A function, so
    # its settings stay scoped to the call: the 0.4 threshold for <%, and no sequential scan,
    # which the planner otherwise picks as it cannot see how costly word_similarity is.
    op.execute(
        r"""
        CREATE FUNCTION passport_similar_competence_labels(query text)
        RETURNS TABLE (competence_id integer, label text, lang text, kind text, similarity real)
        LANGUAGE sql STABLE PARALLEL SAFE STRICT
        SET pg_trgm.word_similarity_threshold = 0.4
        SET enable_seqscan = off
        AS $$
          SELECT l.competence_id, l.label, l.lang, l.kind, public.word_similarity(query, l.norm)
          FROM public.competence_labels l
          WHERE query OPERATOR(public.<%) l.norm
            AND NOT EXISTS (
              SELECT 1 FROM public.competence_labels x
              WHERE x.competence_id = l.competence_id
                AND x.norm LIKE '%' || replace(replace(replace(query, '\', '\\'), '%', '\%'),
                                               '_', '\_') || '%')
        $$
        """
    )
    op.create_index(
        "ix_occupation_competences_competence",
        "occupation_competences",
        ["competence_id", "occupation_id"],
    )
    op.create_table(
        "taxonomy_imports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("esco_version", sa.Text(), nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("counts", pg.JSONB(), nullable=False),
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION passport_similar_competence_labels(text)")
    for table in (
        "taxonomy_imports",
        "occupation_competences",
        "occupation_labels",
        "occupations",
        "isco_groups",
        "competence_collections",
        "competence_broader",
        "competence_labels",
        "competences",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION passport_normalize(text)")
