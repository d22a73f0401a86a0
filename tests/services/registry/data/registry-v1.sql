-- A registry database of schema version 1 (iotmon-registry at commit 2b28187), dumped
-- with sqlite3 iterdump: opened by today's code, it must be upgraded in place.
BEGIN TRANSACTION;
CREATE TABLE child_tags (
	tenant_id VARCHAR(64) NOT NULL, 
	tag VARCHAR(128) NOT NULL, 
	child_id VARCHAR(64) NOT NULL, 
	PRIMARY KEY (tenant_id, tag), 
	FOREIGN KEY(tenant_id, child_id) REFERENCES children (tenant_id, id)
);
INSERT INTO "child_tags" VALUES('acme','E200341201','kid-1');
CREATE TABLE children (
	tenant_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	PRIMARY KEY (tenant_id, id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id)
);
INSERT INTO "children" VALUES('acme','kid-1','Ada');
CREATE TABLE devices (
	tenant_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	site_id VARCHAR(64), 
	gateway_id VARCHAR(64), 
	PRIMARY KEY (tenant_id, id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id), 
	FOREIGN KEY(tenant_id, site_id) REFERENCES sites (tenant_id, id), 
	FOREIGN KEY(tenant_id, gateway_id) REFERENCES devices (tenant_id, id)
);
INSERT INTO "devices" VALUES('acme','gw-1','','plant-1',NULL);
INSERT INTO "devices" VALUES('acme','env-1','',NULL,'gw-1');
INSERT INTO "devices" VALUES('acme','env-2','',NULL,'gw-1');
INSERT INTO "devices" VALUES('acme','loose','',NULL,NULL);
CREATE TABLE guardians (
	tenant_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	PRIMARY KEY (tenant_id, id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id)
);
INSERT INTO "guardians" VALUES('acme','mum','');
CREATE TABLE guardianships (
	tenant_id VARCHAR(64) NOT NULL, 
	guardian_id VARCHAR(64) NOT NULL, 
	child_id VARCHAR(64) NOT NULL, 
	PRIMARY KEY (tenant_id, guardian_id, child_id), 
	FOREIGN KEY(tenant_id, guardian_id) REFERENCES guardians (tenant_id, id), 
	FOREIGN KEY(tenant_id, child_id) REFERENCES children (tenant_id, id)
);
INSERT INTO "guardianships" VALUES('acme','mum','kid-1');
CREATE TABLE registry_meta (
	"key" VARCHAR(64) NOT NULL, 
	value INTEGER NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "registry_meta" VALUES('schema_version',1);
INSERT INTO "registry_meta" VALUES('revision',5);
CREATE TABLE sites (
	tenant_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	PRIMARY KEY (tenant_id, id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id)
);
INSERT INTO "sites" VALUES('acme','plant-1','Plant 1');
CREATE TABLE tenants (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "tenants" VALUES('acme','','2026-11-25 09:00:00.000000');
CREATE INDEX ix_devices_gateway ON devices (tenant_id, gateway_id);
CREATE INDEX ix_devices_site ON devices (tenant_id, site_id);
CREATE INDEX ix_child_tags_child ON child_tags (tenant_id, child_id);
COMMIT;
