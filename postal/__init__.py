"""Postal delivery registration (dịch vụ bưu chính công ích): a citizen asks for a dossier's
result to be delivered by the post office instead of collecting it.

    model.py    the registration, its states and the validation of what people type
    places.py   the province / district / ward lists (``places_quangnam.toml``)
    store.py    the store interface; sql.py on SQLAlchemy (migration 0007)
    export.py   the post office's daily list (CSV and XLSX)
    cli.py      ``tongdai postal export --date D``
"""
