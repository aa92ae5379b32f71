-- Who granted and who revoked each right: the subject of the token it was done with.
-- Rights granted before this was recorded keep NULL: nobody can say now who it was.
ALTER TABLE access_rights ADD COLUMN granted_by text, ADD COLUMN revoked_by text;
