"""Verifiable exports: CLR 2.0 / Open Badges 3.0 credentials on the W3C VC 2.0 data model,
signed with Data Integrity ``eddsa-rdfc-2022``, their revocation status lists, verification,
and the PDF CV attachment that carries them."""
