SELECT nextval('location_id_seq')
