SELECT nextval('item_id_seq')
