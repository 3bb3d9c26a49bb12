#!/usr/bin/env python3
"""Synthetic Amazon Connect Customer Profiles with known duplicates.

Writes one Profile object per line (the shape a segment-snapshot JSONL export
has) plus a truth CSV ``profile_id,cluster_id`` where ``cluster_id`` names the
real-world entity behind each profile.

    python benchmarks/generate.py --n 3000 --seed 7 \
        --output profiles.jsonl --truth truth.csv [--bad_lines K] [--workers W]

    from benchmarks.generate import generate        # or load the file by path
    for profile, entity_id in generate(3000, seed=7): ...

What is in the data
-------------------
* 14 countries (US GB DE FR IN AU BR CA ES IT NL JP MX ZA), each with its own
  names (accents, Japanese kanji for some JP people, Spanish double surnames,
  Dutch "van der" prefixes), streets, cities, postal codes and phone numbers
  that ``phonenumbers`` accepts as valid for that region.
* Every profile of an entity is rendered independently, the way different
  source systems (crm / web / pos / callcentre) would store the same person:
  phone numbers in many notations, birth dates in five formats, country as
  ISO-2, ISO-3, English or local name, fields present or missing.
* Duplicates (about 30 % of entities have 1-4 of them) additionally carry
  typos, nicknames, accent folding, email variants (case, gmail dots, +tags,
  googlemail.com), new phone or email, a new address, swapped names.
* Hard negatives -- different entities that share a lot: households (last
  name, address, home phone, sometimes a family email or account number),
  twins (also the birth date), coworkers (company switchboard phone and email
  domain), a business ACCOUNT_PROFILE next to its owner's personal PROFILE
  (same phone, email, often address and account number), groups with a very
  common name in one city, a call-centre number and placeholder emails spread
  over unrelated profiles.

Determinism and speed
---------------------
Output depends only on ``--n`` and ``--seed``: the n profiles are made in
chunks of ``CHUNK`` profiles, each chunk with its own ``random.Random`` seeded
from (seed, chunk index), so the result is identical for any ``--workers``.
Phone numbers are drawn from per-country prefix tables that are checked once
with ``phonenumbers`` at start-up; the per-record hot path only fills digit
templates.  Fresh phone numbers and account numbers come from a counter pushed
through a bijection, so two unrelated entities never share one by accident
(sharing only happens where a scenario says so). Email addresses are made from
names, so two chunks can give one address (``charles.whitwell@gmail.com``) to two
people of one rare name, which a mail provider never does; as the chunks are
written in order, an address an earlier chunk gave to someone else gets a number
(``_Addresses``). The first N profiles of a run are still its run of N when N is a
multiple of ``CHUNK``.
"""
from __future__ import annotations

import argparse
import bisect
import math
import os
import random
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Iterator

import orjson

CHUNK = 10_000          # profiles per independently seeded chunk
_SLOTS = 8              # fresh-number counter slots reserved per profile

SOURCES = ("crm", "web", "pos", "callcentre")
SOURCE_WEIGHTS = (40, 30, 15, 15)
LOYALTY = ("bronze", "silver", "gold", "platinum")

# --------------------------------------------------------------------------
# Reference data.  Lists are whitespace separated; "_" stands for a space
# inside one entry (e.g. "van_der_Berg").
# --------------------------------------------------------------------------

_EN_M = ("James John Robert Michael William David Richard Joseph Thomas Charles "
         "Christopher Daniel Matthew Anthony Mark Donald Steven Paul Andrew Joshua "
         "Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan Jacob "
         "Nicholas Eric Jonathan Stephen Justin Scott Benjamin Samuel Gregory "
         "Alexander Frank Patrick Raymond Jack Peter Oliver Harry")
_EN_F = ("Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen "
         "Lisa Nancy Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda "
         "Dorothy Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy "
         "Angela Anna Pamela Emma Nicole Helen Samantha Katherine Christine Rachel "
         "Catherine Victoria Charlotte Olivia Abigail Alice Zoë Chloë Isabella Sophia "
         "Josephine Eleanor")

_COUNTRY_DATA = {
    "US": dict(
        iso3="USA", weight=30, names=("United States", "United States of America", "USA"),
        first_m=_EN_M, first_f=_EN_F + " María Guadalupe",
        last=("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez "
              "Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin "
              "Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker "
              "Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson "
              "Baker Hall Rivera Campbell Mitchell Carter Roberts O'Brien McDonald Kowalski"),
        common=("John Smith", "Michael Johnson", "Mary Williams", "David Brown"),
        region_field="State", state_code_p=0.8, slash="MDY",
        cities=[("New York", "NY", "New York", "100 101 104 112"),
                ("Los Angeles", "CA", "California", "900 902"),
                ("Chicago", "IL", "Illinois", "606"),
                ("Houston", "TX", "Texas", "770"),
                ("Phoenix", "AZ", "Arizona", "850"),
                ("Philadelphia", "PA", "Pennsylvania", "191"),
                ("San Antonio", "TX", "Texas", "782"),
                ("San Diego", "CA", "California", "921"),
                ("Dallas", "TX", "Texas", "752"),
                ("Seattle", "WA", "Washington", "981"),
                ("Boston", "MA", "Massachusetts", "021"),
                ("Denver", "CO", "Colorado", "802"),
                ("Atlanta", "GA", "Georgia", "303"),
                ("Miami", "FL", "Florida", "331"),
                ("Portland", "OR", "Oregon", "972"),
                ("Springfield", "IL", "Illinois", "627"),
                ("Springfield", "MO", "Missouri", "658"),
                ("Columbus", "OH", "Ohio", "432"),
                ("Austin", "TX", "Texas", "787"),
                ("Nashville", "TN", "Tennessee", "372")],
        postal="{p}##", street_style="en_us",
        streets="Main Oak Maple Cedar Pine Elm Washington Lake Hill Park Sunset Lincoln "
                "Jackson Church Highland Mill River Spring Ridge Walnut Chestnut Franklin",
        emails="gmail.com:40 yahoo.com:15 hotmail.com:10 outlook.com:10 aol.com:5 "
               "icloud.com:8 comcast.net:4 att.net:3 googlemail.com:1",
        company_suffix="Inc.|Incorporated LLC|L.L.C. Corp.|Corporation Co.|Company",
        company_tld="com",
    ),
    "GB": dict(
        iso3="GBR", weight=12, names=("United Kingdom", "UK", "Great Britain"),
        first_m=_EN_M, first_f=_EN_F,
        last=("Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright "
              "Thompson Evans Walker White Roberts Green Hall Wood Jackson Clarke Patel "
              "Khan Lewis James Phillips Mason Mitchell Rose Hughes Edwards Turner Hill "
              "Cooper Ward Morris Moore Clark Harrison Baker O'Connor Ali Murphy "
              "Campbell Stewart MacDonald Anderson Scott Reid"),
        common=("John Smith", "David Jones", "Sarah Taylor", "James Brown"),
        region_field="County", state_code_p=0.0, slash="DMY",
        cities=[("London", "", "Greater London", "SW1A E1 N1 SE1 W2 NW3 EC1A SW11 E14"),
                ("Manchester", "", "Greater Manchester", "M1 M14 M20"),
                ("Birmingham", "", "West Midlands", "B1 B15 B29"),
                ("Leeds", "", "West Yorkshire", "LS1 LS6"),
                ("Glasgow", "", "Lanarkshire", "G1 G12"),
                ("Edinburgh", "", "Midlothian", "EH1 EH3 EH10"),
                ("Bristol", "", "Bristol", "BS1 BS8"),
                ("Liverpool", "", "Merseyside", "L1 L17"),
                ("Cardiff", "", "South Glamorgan", "CF10 CF24"),
                ("Belfast", "", "County Antrim", "BT1 BT9"),
                ("Sheffield", "", "South Yorkshire", "S1 S10"),
                ("Newcastle upon Tyne", "", "Tyne and Wear", "NE1 NE6"),
                ("Nottingham", "", "Nottinghamshire", "NG1 NG7"),
                ("Brighton", "", "East Sussex", "BN1 BN2"),
                ("Oxford", "", "Oxfordshire", "OX1 OX4"),
                ("Cambridge", "", "Cambridgeshire", "CB1 CB2")],
        postal="{p} #@@", street_style="en_gb",
        streets="High Station Church Victoria Park London Mill Manor Kings Queens York "
                "Green Windsor Albert Springfield Grange Chapel Castle Market",
        emails="gmail.com:35 hotmail.co.uk:15 yahoo.co.uk:12 outlook.com:10 btinternet.com:8 "
               "icloud.com:6 sky.com:5 live.co.uk:4 googlemail.com:5",
        company_suffix="Ltd|Limited PLC|plc LLP|L.L.P.",
        company_tld="co.uk",
    ),
    "DE": dict(
        iso3="DEU", weight=8, names=("Germany", "Deutschland"),
        first_m=("Lukas Jürgen Klaus Stefan Michael Thomas Andreas Wolfgang Peter Uwe Jörg "
                 "Matthias Frank Sebastian Tobias Maximilian Felix Jonas Leon Björn Dieter "
                 "Günter Horst Florian"),
        first_f=("Anna Ursula Monika Petra Sabine Claudia Susanne Andrea Julia Katharina Lena "
                 "Lea Sophie Gisela Birgit Anke Käthe Jana Marie Renate Jutta Hannelore "
                 "Brigitte Lisa"),
        last=("Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann "
              "Schäfer Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann "
              "Braun Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann "
              "Köhler Herrmann König Walter Huber Kaiser Fuchs Möller Weiß Jäger Groß "
              "Böhm Günther Vogel Keller"),
        common=("Thomas Müller", "Michael Schmidt", "Andrea Schneider"),
        region_field="State", state_code_p=0.0, slash="DMY",
        cities=[("Berlin", "BE", "Berlin", "10 12 13"),
                ("Hamburg", "HH", "Hamburg", "20 22"),
                ("München|Muenchen|Munich", "BY", "Bayern", "80 81"),
                ("Köln|Koeln|Cologne", "NW", "Nordrhein-Westfalen", "50 51"),
                ("Frankfurt am Main|Frankfurt", "HE", "Hessen", "60"),
                ("Stuttgart", "BW", "Baden-Württemberg", "70"),
                ("Düsseldorf|Duesseldorf", "NW", "Nordrhein-Westfalen", "40"),
                ("Leipzig", "SN", "Sachsen", "04"),
                ("Dortmund", "NW", "Nordrhein-Westfalen", "44"),
                ("Bremen", "HB", "Bremen", "28"),
                ("Dresden", "SN", "Sachsen", "01"),
                ("Hannover|Hanover", "NI", "Niedersachsen", "30"),
                ("Nürnberg|Nuernberg|Nuremberg", "BY", "Bayern", "90")],
        postal="{p}###", street_style="de",
        streets="Haupt Bahnhof Schul Garten Dorf Berg Kirch Wald Linden Goethe Schiller "
                "Mozart Birken Friedrich Rosen Kant Eichen Feld",
        emails="gmail.com:25 gmx.de:20 web.de:20 t-online.de:12 yahoo.de:6 outlook.de:5 "
               "gmx.net:6 posteo.de:3 googlemail.com:3",
        company_suffix="GmbH|G.m.b.H. AG|Aktiengesellschaft KG|Kommanditgesellschaft",
        company_tld="de",
    ),
    "FR": dict(
        iso3="FRA", weight=6, names=("France",),
        first_m=("Jean Pierre Michel Philippe Alain Nicolas Christophe Stéphane Sébastien "
                 "Julien Frédéric Éric Laurent Olivier Thomas Antoine Hugo Lucas Théo Jérôme "
                 "François Jean-Pierre Jean-Luc"),
        first_f=("Marie Nathalie Isabelle Sylvie Catherine Françoise Valérie Christine "
                 "Sandrine Céline Sophie Camille Léa Manon Chloé Inès Zoé Hélène Amélie "
                 "Élodie Anne-Marie Marie-Claire"),
        last=("Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon "
              "Laurent Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel "
              "Girard André Lefèvre Mercier Dupont Lambert Bonnet François Legrand Garnier "
              "Faure Rousseau Blanc Guérin Muller Henry Roussel Perrin Clément Gauthier "
              "Chevalier"),
        common=("Jean Martin", "Marie Dubois", "Nicolas Bernard"),
        region_field=None, state_code_p=0.0, slash="DMY",
        cities=[("Paris", "", "", "75"), ("Marseille", "", "", "13"), ("Lyon", "", "", "69"),
                ("Toulouse", "", "", "31"), ("Nice", "", "", "06"), ("Nantes", "", "", "44"),
                ("Strasbourg", "", "", "67"), ("Montpellier", "", "", "34"),
                ("Bordeaux", "", "", "33"), ("Lille", "", "", "59"), ("Rennes", "", "", "35"),
                ("Saint-Étienne|Saint-Etienne|St Etienne", "", "", "42")],
        postal="{p}0##", street_style="fr",
        streets="de_la_République Victor_Hugo Jean_Jaurès de_la_Paix du_Général_de_Gaulle "
                "Pasteur des_Lilas de_l'Église Voltaire Gambetta Nationale des_Écoles "
                "Émile_Zola du_Moulin",
        emails="gmail.com:30 orange.fr:18 free.fr:12 hotmail.fr:10 laposte.net:8 sfr.fr:7 "
               "yahoo.fr:8 outlook.fr:4 wanadoo.fr:3",
        company_suffix="SARL|S.A.R.L. SAS|S.A.S. SA|S.A.",
        company_tld="fr",
    ),
    "IN": dict(
        iso3="IND", weight=7, names=("India",),
        first_m=("Aarav Rahul Amit Rajesh Suresh Vikram Arjun Rohan Sanjay Anil Vijay Ravi "
                 "Deepak Manoj Arun Karthik Sunil Prakash Ajay Nikhil Mohammed Venkatesh"),
        first_f=("Priya Anjali Sunita Pooja Neha Kavita Deepa Lakshmi Meera Divya Ananya "
                 "Shreya Aishwarya Radha Sneha Swati Nisha Asha Rekha Isha Fatima Gayatri"),
        last=("Sharma Verma Gupta Singh Kumar Patel Reddy Iyer Nair Rao Das Mehta Shah Joshi "
              "Chatterjee Banerjee Mukherjee Agarwal Kapoor Malhotra Menon Pillai Desai Jain "
              "Bhat Chopra Mishra Pandey Yadav Khan Krishnan Subramanian"),
        common=("Rahul Sharma", "Amit Kumar", "Priya Singh"),
        region_field="State", state_code_p=0.3, slash="DMY",
        cities=[("Mumbai|Bombay", "MH", "Maharashtra", "400"),
                ("New Delhi|Delhi", "DL", "Delhi", "110"),
                ("Bengaluru|Bangalore", "KA", "Karnataka", "560"),
                ("Hyderabad", "TG", "Telangana", "500"),
                ("Chennai|Madras", "TN", "Tamil Nadu", "600"),
                ("Kolkata|Calcutta", "WB", "West Bengal", "700"),
                ("Pune", "MH", "Maharashtra", "411"),
                ("Ahmedabad", "GJ", "Gujarat", "380"),
                ("Jaipur", "RJ", "Rajasthan", "302"),
                ("Lucknow", "UP", "Uttar Pradesh", "226")],
        postal="{p}###", street_style="in",
        streets="MG_Road Brigade_Road Linking_Road Park_Street Anna_Salai Nehru_Nagar "
                "Gandhi_Road Station_Road Ring_Road Residency_Road Church_Street",
        emails="gmail.com:55 yahoo.co.in:12 rediffmail.com:10 hotmail.com:8 outlook.com:8 "
               "yahoo.com:7",
        company_suffix="Pvt Ltd|Private Limited Ltd|Limited",
        company_tld="in",
    ),
    "AU": dict(
        iso3="AUS", weight=5, names=("Australia",),
        first_m=_EN_M, first_f=_EN_F,
        last=("Smith Jones Williams Brown Wilson Taylor Johnson White Martin Anderson "
              "Thompson Nguyen Thomas Walker Harris Lee Ryan Robinson Kelly King Davis "
              "Wright Evans Roberts Green Hall Wood Jackson Clarke Murphy O'Neill Tran "
              "Mitchell Campbell Young"),
        common=("John Smith", "David Jones", "Sarah Williams"),
        region_field="State", state_code_p=0.85, slash="DMY",
        cities=[("Sydney", "NSW", "New South Wales", "20 21"),
                ("Melbourne", "VIC", "Victoria", "30 31"),
                ("Brisbane", "QLD", "Queensland", "40 41"),
                ("Perth", "WA", "Western Australia", "60 61"),
                ("Adelaide", "SA", "South Australia", "50 51"),
                ("Hobart", "TAS", "Tasmania", "70"),
                ("Canberra", "ACT", "Australian Capital Territory", "26"),
                ("Darwin", "NT", "Northern Territory", "08"),
                ("Gold Coast", "QLD", "Queensland", "42"),
                ("Newcastle", "NSW", "New South Wales", "23")],
        postal="{p}##", street_style="en_gb",
        streets="George Pitt Collins Queen Elizabeth Flinders Hay King_William Murray "
                "Bourke Swanston Macquarie Adelaide Oxford",
        emails="gmail.com:40 bigpond.com:15 hotmail.com:12 outlook.com:10 yahoo.com.au:10 "
               "optusnet.com.au:6 icloud.com:7",
        company_suffix="Pty Ltd|Proprietary Limited Ltd|Limited",
        company_tld="com.au",
    ),
    "BR": dict(
        iso3="BRA", weight=6, names=("Brazil", "Brasil"),
        first_m=("João José Antônio Francisco Carlos Paulo Pedro Lucas Luiz Marcos Luís "
                 "Gabriel Rafael Daniel Marcelo Bruno Eduardo Felipe Rodrigo Gustavo "
                 "João_Pedro"),
        first_f=("Maria Ana Francisca Antônia Adriana Juliana Márcia Fernanda Patrícia Aline "
                 "Sandra Camila Amanda Bruna Jéssica Letícia Júlia Luciana Vanessa Mariana "
                 "Maria_Eduarda"),
        last=("Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes "
              "Costa Ribeiro Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa "
              "Rocha Dias Nascimento Andrade Moreira Nunes Marques Machado Mendes Freitas "
              "Cardoso Ramos Gonçalves Teixeira Araújo Conceição"),
        common=("José Silva", "Maria Santos", "João Oliveira"),
        region_field="State", state_code_p=0.8, slash="DMY",
        cities=[("São Paulo|Sao Paulo", "SP", "São Paulo", "01 02 03 04 05"),
                ("Rio de Janeiro", "RJ", "Rio de Janeiro", "20 21 22"),
                ("Belo Horizonte", "MG", "Minas Gerais", "30 31"),
                ("Brasília|Brasilia", "DF", "Distrito Federal", "70 71"),
                ("Salvador", "BA", "Bahia", "40 41"),
                ("Fortaleza", "CE", "Ceará", "60"),
                ("Curitiba", "PR", "Paraná", "80 81"),
                ("Recife", "PE", "Pernambuco", "50"),
                ("Porto Alegre", "RS", "Rio Grande do Sul", "90 91"),
                ("Manaus", "AM", "Amazonas", "69")],
        postal="{p}###-###", street_style="br",
        streets="Augusta das_Flores São_João XV_de_Novembro Sete_de_Setembro Brasil "
                "Paulista Getúlio_Vargas Tiradentes Santos_Dumont Dom_Pedro_II Bahia",
        emails="gmail.com:50 hotmail.com:15 yahoo.com.br:10 outlook.com:8 uol.com.br:7 "
               "bol.com.br:5 terra.com.br:5",
        company_suffix="Ltda|Limitada S.A.|SA ME|M.E.",
        company_tld="com.br",
    ),
    "CA": dict(
        iso3="CAN", weight=5, names=("Canada",),
        first_m=_EN_M + " Jean-François Stéphane Mathieu Étienne Luc",
        first_f=_EN_F + " Mélanie Geneviève Josée Nathalie Isabelle",
        last=("Smith Brown Tremblay Martin Roy Wilson MacDonald Gagnon Johnson Taylor Côté "
              "Campbell Anderson Leblanc Lee Jones White Williams Miller Thompson Gauthier "
              "Young Morin Bouchard Scott Stewart Bélanger Lavoie Fortin Gagné Ouellet "
              "Pelletier Wong Singh Chen"),
        common=("John Smith", "Michel Tremblay", "David Brown"),
        region_field="Province", state_code_p=0.8, slash="DMY",
        cities=[("Toronto", "ON", "Ontario", "M5V M4C M6G"),
                ("Montréal|Montreal", "QC", "Québec", "H2X H3A H1A"),
                ("Vancouver", "BC", "British Columbia", "V6B V5K"),
                ("Calgary", "AB", "Alberta", "T2P T3A"),
                ("Edmonton", "AB", "Alberta", "T5J"),
                ("Ottawa", "ON", "Ontario", "K1P K2P"),
                ("Winnipeg", "MB", "Manitoba", "R3C"),
                ("Québec|Quebec City|Québec City", "QC", "Québec", "G1R"),
                ("Halifax", "NS", "Nova Scotia", "B3H"),
                ("Victoria", "BC", "British Columbia", "V8W")],
        postal="{p} #@#", street_style="en_us",
        streets="Queen King Yonge Bloor Dundas Main Maple Cedar Oak Park Victoria Elgin "
                "Sherbrooke Granville",
        emails="gmail.com:40 hotmail.com:15 outlook.com:10 yahoo.ca:10 rogers.com:6 "
               "sympatico.ca:5 videotron.ca:4 shaw.ca:5 icloud.com:5",
        company_suffix="Inc.|Incorporated Ltd.|Limited Corp.|Corporation",
        company_tld="ca",
    ),
    "ES": dict(
        iso3="ESP", weight=4, names=("Spain", "España"),
        first_m=("Antonio José Manuel Francisco David Juan Javier Daniel Carlos Jesús "
                 "Alejandro Miguel Rafael Pablo Sergio Fernando Jorge Alberto Álvaro Adrián "
                 "José_Luis Juan_Carlos"),
        first_f=("María Carmen Ana Isabel Laura Dolores Pilar Josefa Teresa Rosa Cristina "
                 "Marta Lucía Elena Paula Sara Raquel Beatriz Nuria Inés María_José "
                 "María_del_Carmen"),
        last=("García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez "
              "Martín Jiménez Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso "
              "Gutiérrez Navarro Torres Domínguez Vázquez Ramos Gil Ramírez Serrano Blanco "
              "Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio Marín Sanz Núñez "
              "Iglesias Peña Ibáñez"),
        common=("Antonio García", "María García", "José Martínez"),
        region_field="Province", state_code_p=0.0, slash="DMY", double_surname=True,
        cities=[("Madrid", "", "Madrid", "28"),
                ("Barcelona", "", "Barcelona", "08"),
                ("Valencia|València", "", "Valencia", "46"),
                ("Sevilla|Seville", "", "Sevilla", "41"),
                ("Zaragoza", "", "Zaragoza", "50"),
                ("Málaga|Malaga", "", "Málaga", "29"),
                ("Murcia", "", "Murcia", "30"),
                ("Palma|Palma de Mallorca", "", "Illes Balears", "07"),
                ("Bilbao", "", "Bizkaia", "48"),
                ("A Coruña|La Coruña", "", "A Coruña", "15")],
        postal="{p}###", street_style="es",
        streets="Mayor de_Alcalá Gran_Vía Real del_Sol Nueva de_la_Constitución San_Juan "
                "Colón de_Cervantes de_la_Paz Serrano",
        emails="gmail.com:45 hotmail.com:20 yahoo.es:10 outlook.es:8 telefonica.net:6 "
               "movistar.es:5 hotmail.es:6",
        company_suffix="S.L.|SL S.A.|SA S.L.U.|SLU",
        company_tld="es",
    ),
    "IT": dict(
        iso3="ITA", weight=4, names=("Italy", "Italia"),
        first_m=("Giuseppe Giovanni Antonio Mario Luigi Francesco Angelo Vincenzo Pietro "
                 "Salvatore Carlo Franco Domenico Paolo Michele Giorgio Sergio Luca Marco "
                 "Andrea Matteo Niccolò Lorenzo"),
        first_f=("Maria Anna Giuseppina Rosa Angela Giovanna Teresa Lucia Carmela Caterina "
                 "Francesca Giulia Chiara Sara Martina Alessia Federica Elisa Valentina "
                 "Silvia"),
        last=("Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno "
              "Gallo Conti De_Luca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri "
              "Fontana Santoro Mariani Rinaldi Caruso Ferrara Galli Martini Leone Longo "
              "Gentile D'Angelo De_Santis Fabbri Sanna Cattaneo Pellegrini Niccolò"),
        common=("Giuseppe Rossi", "Maria Russo", "Marco Ferrari"),
        region_field="Province", state_code_p=0.8, slash="DMY",
        cities=[("Roma|Rome", "RM", "Roma", "001"),
                ("Milano|Milan", "MI", "Milano", "201"),
                ("Napoli|Naples", "NA", "Napoli", "801"),
                ("Torino|Turin", "TO", "Torino", "101"),
                ("Palermo", "PA", "Palermo", "901"),
                ("Genova|Genoa", "GE", "Genova", "161"),
                ("Bologna", "BO", "Bologna", "401"),
                ("Firenze|Florence", "FI", "Firenze", "501"),
                ("Bari", "BA", "Bari", "701"),
                ("Venezia|Venice", "VE", "Venezia", "301"),
                ("Verona", "VR", "Verona", "371")],
        postal="{p}##", street_style="it",
        streets="Roma Garibaldi Mazzini Dante Cavour Vittorio_Emanuele_II Verdi Marconi "
                "Matteotti XX_Settembre Nazionale della_Repubblica",
        emails="gmail.com:40 libero.it:18 hotmail.it:10 yahoo.it:8 alice.it:6 virgilio.it:6 "
               "tiscali.it:4 outlook.it:5 fastwebnet.it:3",
        company_suffix="S.r.l.|SRL S.p.A.|SPA S.n.c.|SNC",
        company_tld="it",
    ),
    "NL": dict(
        iso3="NLD", weight=3, names=("Netherlands", "The Netherlands", "Nederland"),
        first_m=("Jan Johannes Cornelis Pieter Hendrik Willem Gerrit Jacobus Daan Sem Lucas "
                 "Bram Thijs Ruben Sander Joost Maarten Bas Jeroen Niels"),
        first_f=("Maria Johanna Anna Cornelia Wilhelmina Elisabeth Emma Julia Sophie Tess "
                 "Anouk Fleur Lotte Sanne Eva Iris Femke Lieke Noor Saar"),
        last=("de_Jong Jansen de_Vries van_den_Berg van_Dijk Bakker Janssen Visser Smit "
              "Meijer de_Boer Mulder de_Groot Bos Vos Peters Hendriks van_Leeuwen Dekker "
              "Brouwer de_Wit Dijkstra Smits de_Graaf van_der_Meer van_der_Linden Kok "
              "Jacobs de_Haan Vermeulen van_den_Heuvel van_der_Veen van_den_Broek "
              "de_Bruijn van_der_Heijden Schouten van_Beek Willems Hoekstra Maas"),
        common=("Jan de Jong", "Maria Jansen", "Pieter de Vries"),
        region_field="Province", state_code_p=0.0, slash="DMY",
        cities=[("Amsterdam", "", "Noord-Holland", "10 11"),
                ("Rotterdam", "", "Zuid-Holland", "30 31"),
                ("Den Haag|'s-Gravenhage|The Hague", "", "Zuid-Holland", "25"),
                ("Utrecht", "", "Utrecht", "35"),
                ("Eindhoven", "", "Noord-Brabant", "56"),
                ("Groningen", "", "Groningen", "97"),
                ("Tilburg", "", "Noord-Brabant", "50"),
                ("Almere", "", "Flevoland", "13"),
                ("Nijmegen", "", "Gelderland", "65")],
        postal="{p}## @@", street_style="nl",
        streets="Kerk Dorps Molen School Stations Prinsen Keizers Heren Nieuwe Linden "
                "Beuken Eiken Wilhelmina Juliana",
        emails="gmail.com:40 hotmail.com:15 ziggo.nl:10 kpnmail.nl:8 outlook.com:8 "
               "live.nl:6 xs4all.nl:5 planet.nl:4 hetnet.nl:4",
        company_suffix="B.V.|BV N.V.|NV V.O.F.|VOF",
        company_tld="nl",
    ),
    "JP": dict(
        iso3="JPN", weight=4, names=("Japan",),
        first_m=("Hiroshi Takashi Kenji Yuki Daiki Haruto Sota Yuto Ren Kaito Takumi Shota "
                 "Kazuki Ryota Taro Ichiro Satoshi Makoto Kenta Naoki"),
        first_f=("Yuko Keiko Akiko Tomoko Yumi Sakura Yui Hina Aoi Haruka Misaki Nanami "
                 "Ayaka Mai Emi Naoko Kumiko Yoko Mika Rin"),
        last=("Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato "
              "Yoshida Yamada Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu "
              "Yamazaki Mori Abe Ikeda Hashimoto Yamashita Ishikawa Nakajima Maeda Fujita "
              "Ogawa Goto Okada Hasegawa Murakami Kondo Saito Endo"),
        common=("Hiroshi Sato", "Yuko Suzuki", "Takashi Tanaka"),
        region_field="State", state_code_p=0.0, slash="DMY",
        cities=[("Tokyo|Tōkyō", "", "Tokyo", "100 150 160"),
                ("Osaka|Ōsaka", "", "Osaka", "530 542"),
                ("Yokohama", "", "Kanagawa", "220 231"),
                ("Nagoya", "", "Aichi", "450 460"),
                ("Sapporo", "", "Hokkaido", "060"),
                ("Fukuoka", "", "Fukuoka", "810"),
                ("Kobe|Kōbe", "", "Hyogo", "650"),
                ("Kyoto|Kyōto", "", "Kyoto", "600 604"),
                ("Sendai", "", "Miyagi", "980"),
                ("Hiroshima", "", "Hiroshima", "730")],
        postal="{p}-####", street_style="jp",
        streets="Marunouchi Shibuya Shinjuku Ginza Umeda Namba Sakae Chuo Minato Nakano "
                "Ebisu Roppongi Tenjin",
        emails="gmail.com:35 yahoo.co.jp:25 docomo.ne.jp:10 ezweb.ne.jp:8 icloud.com:10 "
               "softbank.ne.jp:6 outlook.jp:6",
        company_suffix="K.K.|Kabushiki Kaisha Co., Ltd.|Co. Ltd G.K.|Godo Kaisha",
        company_tld="co.jp",
    ),
    "MX": dict(
        iso3="MEX", weight=4, names=("Mexico", "México"),
        first_m=("José Juan Luis Carlos Jesús Miguel Francisco Alejandro Jorge Pedro Ricardo "
                 "Fernando Eduardo Roberto Manuel Arturo Héctor Sergio Raúl Javier "
                 "José_Luis Juan_Manuel"),
        first_f=("María Guadalupe Juana Margarita Verónica Leticia Rosa Josefina Alejandra "
                 "Patricia Gabriela Elizabeth Adriana Silvia Claudia Mónica Yolanda Araceli "
                 "Norma Martha María_Guadalupe"),
        last=("Hernández García Martínez López González Pérez Rodríguez Sánchez Ramírez Cruz "
              "Flores Gómez Morales Vázquez Reyes Jiménez Torres Díaz Gutiérrez Ruiz Mendoza "
              "Aguilar Ortiz Moreno Castillo Romero Álvarez Méndez Chávez Rivera Juárez "
              "Ramos Domínguez Herrera Medina Castro Vargas Guzmán Velázquez Muñoz Zúñiga "
              "Cárdenas"),
        common=("José Hernández", "María García", "Juan Martínez"),
        region_field="State", state_code_p=0.5, slash="DMY", double_surname=True,
        cities=[("Ciudad de México|CDMX|Mexico City", "CDMX", "Ciudad de México", "01 03 06 11"),
                ("Guadalajara", "JAL", "Jalisco", "44"),
                ("Monterrey", "NL", "Nuevo León", "64"),
                ("Puebla", "PUE", "Puebla", "72"),
                ("Tijuana", "BC", "Baja California", "22"),
                ("León", "GTO", "Guanajuato", "37"),
                ("Cancún|Cancun", "QROO", "Quintana Roo", "77"),
                ("Mérida|Merida", "YUC", "Yucatán", "97"),
                ("Querétaro|Queretaro", "QRO", "Querétaro", "76")],
        postal="{p}###", street_style="mx",
        streets="Reforma Insurgentes_Sur Juárez Hidalgo Morelos 5_de_Mayo Madero "
                "Revolución Independencia Constitución Zaragoza Allende",
        emails="gmail.com:45 hotmail.com:25 yahoo.com.mx:10 outlook.com:10 prodigy.net.mx:5 "
               "live.com.mx:5",
        company_suffix="S.A. de C.V.|SA de CV S. de R.L.|S de RL S.C.|SC",
        company_tld="com.mx",
    ),
    "ZA": dict(
        iso3="ZAF", weight=2, names=("South Africa",),
        first_m=_EN_M + " Thabo Sipho Bongani Pieter Johan Sibusiso Mandla",
        first_f=_EN_F + " Lerato Nomvula Thandiwe Annelie Zanele Naledi",
        last=("Nkosi Dlamini Ndlovu Khumalo Mokoena Botha van_der_Merwe Pretorius Naidoo "
              "Smith Jacobs Williams Mahlangu Mthembu Sithole Zulu Venter Nel Govender "
              "Pillay Mabaso Steyn Fourie Coetzee du_Plessis Molefe Maseko"),
        common=("Thabo Nkosi", "John Smith", "Sipho Dlamini"),
        region_field="Province", state_code_p=0.3, slash="DMY",
        cities=[("Johannesburg", "GP", "Gauteng", "20 21"),
                ("Cape Town", "WC", "Western Cape", "80 77"),
                ("Durban", "KZN", "KwaZulu-Natal", "40"),
                ("Pretoria|Tshwane", "GP", "Gauteng", "00"),
                ("Gqeberha|Port Elizabeth", "EC", "Eastern Cape", "60"),
                ("Bloemfontein", "FS", "Free State", "93"),
                ("East London", "EC", "Eastern Cape", "52"),
                ("Polokwane", "LP", "Limpopo", "07")],
        postal="{p}##", street_style="en_gb",
        streets="Long Main Church Jan_Smuts Voortrekker Nelson_Mandela Oxford Bree "
                "Loop Kloof Smith Beach",
        emails="gmail.com:45 yahoo.com:10 mweb.co.za:12 telkomsa.net:8 outlook.com:10 "
               "webmail.co.za:8 icloud.com:7",
        company_suffix="(Pty) Ltd|Proprietary Limited Ltd|Limited CC|Close Corporation",
        company_tld="co.za",
    ),
}

# Long tail of surnames: prefix + suffix compounds in each country's style, so a
# million profiles have thousands of surnames instead of a few dozen (keeps
# name blocks and accidental email clashes realistic).  A country uses the
# core list above for half of the people and this tail for the rest.
_EN_TAIL = ("Ash Black Brad Brook Cald Chad Craw Dun Ells Fair Fern Gold Green Hal Hart Hay "
            "Holl Kings Lang Lock Mar Mid Mor New Nor Pem Red Rad Shel Stan Stock Thorn Wake "
            "Whit Win Wood Bram Cran Hather Mill",
            "ford ley ton well wood field worth by more ridge stone dale wick bury combe ham "
            "croft wright")
_SURNAME_TAILS = {
    "US": _EN_TAIL, "GB": _EN_TAIL, "AU": _EN_TAIL, "CA": _EN_TAIL, "ZA": _EN_TAIL,
    "DE": ("Acker Alt Bach Berg Birken Brand Brunn Eichen Eng Feld Fried Gold Grün Hage Hart "
           "Hoch Hof Holz Kirch Lang Lichten Linden Mühl Neu Ober Rosen Schön Stein Wald Weiß "
           "Wester Wies Winter Kälber",
           "mann berger er hofer bach meier feld hagen stein thal brunner inger ner wald"),
    "FR": ("Beau Bel Bon Cham Du Fon Gar La Le Mar Mont Ro Val Ver Bois Cour Del Pré Roche "
           "Saint-Mar Chau Ber",
           "champ mont val noir court fort lieu bert mas roux vin lin rier tier nier ville "
           "mard pont"),
    "IN": ("Ram Krishna Venkat Sri Subra Bala Gopal Raghu Chandra Nara Siva Hari Jaga Mohan "
           "Prabhu Anand Raja",
           "murthy swamy chandran nathan krishnan raman pal das kumar appa reddy iah"),
    "BR": ("Abreu Albu Aze Bar Bor Cam Cas Fer Fon Gui Mag Mar Mede Mon Pai Pin Quei Rib "
           "Salda Sequei Val Vas Vil",
           "querque vedo reto ges pos tro reira seca marães alhães tins iros va heiro roz "
           "anha ares lela"),
    "ES": ("Al Ber Cal Cas Cer Es Gal Lar Man Mar Mon Pal Par Ro San Se Val Vi Zu Bal Ar",
           "varez ceda zada ladas nández rano tero lejo tínez ceño cedo rrero dal mero"),
    "MX": ("Al Ber Cal Cas Cer Es Gal Lar Man Mar Mon Pal Par Ro San Se Val Vi Zu Bal Ar",
           "varez ceda zada ladas nández rano tero lejo tínez ceño cedo rrero dal mero"),
    "IT": ("Bel Ber Bon Cal Cam Car Cas Del Fal Fer Gal Lan Mar Mon Pal Pel Ros San Ser Tor "
           "Val Vit Bran Cec Fab Gar Mazz Orl",
           "etti ini ucci oni elli ari ano otti ese ardi one azzi ieri"),
    "NL": ("Berg Bosch Brink Dam Dijk Hoek Hout Kamp Laan Meer Molen Poel Rijn Veen Vliet "
           "Wal Zand Boom Broek Heuvel Leeuw Akker Beek Kerk Wijk",
           "_ _ _ man stra ink ema s"),
    "JP": ("Yama Naka Ta Ki Ishi Mori Kawa Hashi Matsu Ike Fuji Taka Oka Hira Kita Nishi "
           "Higashi Mina Kuro Shira Ao Uchi Tsuchi Iwa Sugi Hara Miya Sako",
           "moto mura da kawa ta no shita guchi zaki saki hara bayashi uchi oka yama gawa "
           "jima sawa ue"),
}
_NL_ARTICLES = ("van ", "van der ", "van den ", "van de ", "de ", "ter ")

# Japanese names that also get a kanji spelling (used by a third of JP people).
_KANJI = {
    "Sato": "佐藤", "Suzuki": "鈴木", "Takahashi": "高橋", "Tanaka": "田中", "Watanabe": "渡辺",
    "Ito": "伊藤", "Yamamoto": "山本", "Nakamura": "中村", "Kobayashi": "小林", "Kato": "加藤",
    "Yoshida": "吉田", "Yamada": "山田", "Sasaki": "佐々木", "Yamaguchi": "山口",
    "Matsumoto": "松本", "Inoue": "井上", "Kimura": "木村", "Hayashi": "林", "Shimizu": "清水",
    "Hiroshi": "博", "Takashi": "隆", "Kenji": "健二", "Taro": "太郎", "Ichiro": "一郎",
    "Satoshi": "聡", "Makoto": "誠", "Yuko": "裕子", "Keiko": "恵子", "Akiko": "明子",
    "Tomoko": "智子", "Sakura": "さくら", "Naoko": "直子", "Yoko": "洋子", "Kumiko": "久美子",
}

# Spelling variants that are the same name written another way (romanisation, ...).
_SPELLINGS = {
    "Sato": ("Satō", "Satou"), "Ito": ("Itō", "Itoh"), "Kato": ("Katō", "Katoh"),
    "Saito": ("Saitō", "Saitou"), "Goto": ("Gotō", "Gotoh"), "Endo": ("Endō", "Endou"),
    "Kondo": ("Kondō", "Kondou"), "Yuko": ("Yūko", "Yuuko"), "Yuki": ("Yūki",),
    "Taro": ("Tarō", "Tarou"), "Ichiro": ("Ichirō", "Ichirou"), "Shota": ("Shōta",),
    "Ryota": ("Ryōta",), "Yoko": ("Yōko", "Youko"), "Sota": ("Sōta",),
    "Mohammed": ("Mohammad", "Muhammad", "Mohamed"), "Catherine": ("Katherine", "Kathryn"),
    "Stephen": ("Steven",), "Jon": ("John",), "Sara": ("Sarah",), "Sarah": ("Sara",),
    "Philippe": ("Phillipe",), "Luís": ("Luiz",), "Luiz": ("Luís",),
}

# Street-word abbreviations per style: (full, abbreviation).
_ABBR = {
    "en_us": [(" Street", " St"), (" Avenue", " Ave"), (" Road", " Rd"), (" Boulevard", " Blvd"),
              (" Drive", " Dr"), (" Lane", " Ln"), (" Court", " Ct")],
    "en_gb": [(" Street", " St"), (" Road", " Rd"), (" Avenue", " Ave"), (" Lane", " Ln"),
              (" Close", " Cl"), (" Crescent", " Cres"), (" Drive", " Dr")],
    "de": [("straße", "str."), ("Straße", "Str."), ("platz", "pl."), ("weg", "weg")],
    "fr": [("avenue", "av."), ("boulevard", "bd"), ("rue", "r."), ("place", "pl.")],
    "es": [("Calle", "C/"), ("Avenida", "Avda."), ("Plaza", "Pza."), ("Paseo", "Pº")],
    "it": [("Via", "V."), ("Viale", "V.le"), ("Piazza", "P.zza"), ("Corso", "C.so")],
    "nl": [("straat", "str."), ("laan", "ln."), ("plein", "pl."), ("weg", "weg")],
    "br": [("Rua", "R."), ("Avenida", "Av."), ("Travessa", "Tv.")],
    "mx": [("Avenida", "Av."), ("Calle", "C."), ("Calzada", "Calz.")],
    "jp": [],
    "in": [(" Road", " Rd"), (" Street", " St"), ("Mahatma Gandhi", "MG"), (" Nagar", " Ngr")],
}

_KEYBOARD = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}

PLACEHOLDER_PHONES = ("+1 800 555 0199", "1-800-555-0199", "+18005550199", "(800) 555-0199",
                      "18005550199")
JUNK_PHONES = ("0000000000", "1234567890", "9999999999", "000", "n/a")
PLACEHOLDER_EMAILS = ("noemail@example.com", "no-email@example.com", "none@none.com",
                      "NOEMAIL@EXAMPLE.COM", "na@na.com", "test@test.com", "unknown@example.com")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS_IN = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_GB_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_CA_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"
_NL_LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"


def _split(s: str) -> list[str]:
    return [w.replace("_", " ") for w in s.split()]


@lru_cache(maxsize=1 << 16)
def _fold(s: str) -> str:
    """Strip accents: 'Müller' -> 'Muller', 'Weiß' -> 'Weiss'."""
    s = s.replace("ß", "ss").replace("æ", "ae").replace("ø", "o").replace("ł", "l")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _german_translit(s: str) -> str:
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue"),
                 ("ß", "ss")):
        s = s.replace(a, b)
    return s


@lru_cache(maxsize=1 << 16)
def _email_token(s: str) -> str:
    """Lower-case ASCII token for an email local part ('O'Brien' -> 'obrien')."""
    return "".join(c for c in _fold(s).lower() if c.isalnum())


# --------------------------------------------------------------------------
# Phone numbers: prefix tables validated once with phonenumbers.
# --------------------------------------------------------------------------

class _PhoneTable:
    """All numbers `prefix + k random digits` for a set of validated prefixes.

    Index i in [0, size) maps to one number; a counter pushed through
    i = (c * mult + add) % size gives distinct numbers for distinct counters.
    """

    __slots__ = ("region", "cc", "prefixes", "cum", "size", "mult", "add", "formats")

    def __init__(self, region, cc, prefixes, seed_add):
        self.region = region
        self.cc = cc
        # prefixes: list of (prefix, k, national_fmt, international_fmt)
        self.prefixes = prefixes
        self.cum = []
        total = 0
        for p in prefixes:
            total += 10 ** p[1]
            self.cum.append(total)
        self.size = total
        mult = 2_654_435_761
        while math.gcd(mult, total) != 1:
            mult += 2
        self.mult = mult
        self.add = seed_add % total
        self.formats = None  # filled by _check_formats

    def number(self, counter: int):
        i = (counter * self.mult + self.add) % self.size
        j = bisect.bisect_right(self.cum, i)
        base = self.cum[j - 1] if j else 0
        prefix, k, nat, intl = self.prefixes[j]
        nsn = prefix + str(i - base).zfill(k)
        return (self.region, self.cc, nsn, nat, intl, self)


def _template(formatted: str, nsn: str) -> str:
    """'020 7946 0018' with nsn '2079460018' -> '0{}{} {}{}{}{} {}{}{}{}'."""
    out = []
    j = len(nsn) - 1
    for ch in reversed(formatted):
        if ch.isdigit() and j >= 0:
            if ch != nsn[j]:
                raise ValueError("format does not end with the national number")
            out.append("{}")
            j -= 1
        else:
            out.append(ch.replace("{", "{{").replace("}", "}}"))
    if j >= 0:
        raise ValueError("format lacks digits of the national number")
    return "".join(reversed(out))


_TRUNK0 = {"GB", "DE", "FR", "IN", "AU", "NL", "JP", "ZA"}   # '+44 (0)20 ...' is idiomatic
_IDD = {"GB": "00", "DE": "00", "FR": "00", "IN": "00", "ES": "00", "IT": "00", "NL": "00",
        "MX": "00", "ZA": "00", "AU": "0011", "JP": "010"}
_LENGTHS = {("DE", "FIXED"): (10, 11)}
# Names of the notations the renderer can use.  Each is checked per table below.
_NOTATIONS = ("e164", "intl", "national", "national_digits", "dashes", "dots", "parens",
              "trunk_paren", "idd", "cc_digits", "us_one")


@lru_cache(maxsize=None)
def _phone_tables(seed_add: int = 0) -> dict:
    """Build {(region, 'MOBILE'|'FIXED'): _PhoneTable}.  Deterministic; ~1-2 s once.

    A prefix is kept when every probe number under it matches the region's
    mobile / fixed-line pattern (and no special-rate pattern), and the numbers
    share one national and one international layout.  Probes: each digit in
    the first two free positions plus 200 random fills, checked against the
    phonenumbers metadata regexes; a handful also through parse/format.
    """
    import re

    import phonenumbers as pn
    from phonenumbers import PhoneNumberFormat as F
    from phonenumbers import PhoneNumberType as T

    rng = random.Random("phone-tables-v1")
    tables = {}
    for region in _COUNTRY_DATA:
        md = pn.PhoneMetadata.metadata_for_region(region)
        general = re.compile(md.general_desc.national_number_pattern)
        others = [re.compile(d.national_number_pattern) for d in
                  (md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
                   md.pager, md.uan, md.voicemail) if d is not None and d.national_number_pattern]
        for kind, ptype, desc in (("MOBILE", T.MOBILE, md.mobile),
                                  ("FIXED", T.FIXED_LINE, md.fixed_line)):
            own = re.compile(desc.national_number_pattern)
            ok_types = {ptype, T.FIXED_LINE_OR_MOBILE}
            ex = pn.example_number_for_type(region, ptype)
            ex_nsn = pn.national_significant_number(ex)
            cc = ex.country_code
            lengths = _LENGTHS.get((region, kind), (len(ex_nsn),))

            def fast_ok(d):
                return (general.fullmatch(d) is not None and own.fullmatch(d) is not None
                        and not any(o.fullmatch(d) for o in others))

            def parse(d):
                try:
                    n = pn.parse("+%d%s" % (cc, d))
                except pn.NumberParseException:
                    return None
                if (pn.is_valid_number_for_region(n, region) and pn.number_type(n) in ok_types
                        and pn.national_significant_number(n) == d):
                    return n
                return None

            def rand_digits(k):
                return "%0*d" % (k, rng.randrange(10 ** k))

            def test_prefix(p, length):
                k = length - len(p)
                probes = []
                for pos in range(min(2, k)):
                    for digit in "0123456789":
                        t = rand_digits(k)
                        probes.append(t[:pos] + digit + t[pos + 1:])
                probes += [rand_digits(k) for _ in range(200)]
                for tail in probes:
                    if not fast_ok(p + tail):
                        return None
                tpl = None
                for tail in probes[::40]:
                    d = p + tail
                    n = parse(d)
                    if n is None:
                        return None
                    try:
                        t = (_template(pn.format_number(n, F.NATIONAL), d),
                             _template(pn.format_number(n, F.INTERNATIONAL), d))
                    except ValueError:
                        return None
                    if tpl is None:
                        tpl = t
                    elif t != tpl:
                        return None
                return tpl

            found = {}
            tried = set()
            for length in lengths:
                stale = 0
                while len(found) < 40 and stale < 250:
                    stale += 1
                    first = ex_nsn[0] if rng.random() < 0.6 else rng.choice("0123456789")
                    d = first + rand_digits(length - 1)
                    if not fast_ok(d):
                        continue
                    for plen in range(max(1, length - 7), length - 3):
                        p = d[:plen]
                        if p in found:
                            break
                        if p in tried:
                            continue
                        tried.add(p)
                        stale = 0
                        tpl = test_prefix(p, length)
                        if tpl:
                            found[p] = (p, length - plen, tpl[0], tpl[1])
                            break
            prefixes = [found[p] for p in sorted(found)]
            table = _PhoneTable(region, str(cc), prefixes,
                                seed_add + 7919 * len(tables))
            _check_formats(table, pn, rng)
            tables[(region, kind)] = table
    return tables


def _check_formats(table, pn, rng):
    """Keep only the notations that phonenumbers reads back to the same number."""
    ok = []
    samples = [table.number(rng.randrange(10 ** 9)) for _ in range(12)]
    for notation in _NOTATIONS:
        good = True
        usable = False
        for ph in samples:
            s = _render_phone_notation(ph, notation)
            if s is None:
                continue
            usable = True
            try:
                n = pn.parse(s, table.region)
            except pn.NumberParseException:
                good = False
                break
            if not (pn.is_valid_number_for_region(n, table.region)
                    and pn.national_significant_number(n) == ph[2]):
                good = False
                break
        if good and usable:
            ok.append(notation)
    table.formats = tuple(ok)


def _render_phone_notation(ph, notation):
    region, cc, nsn, nat, intl, _ = ph
    if notation == "e164":
        return "+" + cc + nsn
    if notation == "intl":
        return intl.format(*nsn)
    national = nat.format(*nsn)
    if notation == "national":
        return national
    if notation == "national_digits":
        return "".join(c for c in national if c.isdigit())
    if notation == "dashes":
        return national.replace("(", "").replace(") ", "-").replace(")", "-").replace(" ", "-")
    if notation == "dots":
        return national.replace("(", "").replace(") ", ".").replace(")", ".").replace(" ", ".") \
            .replace("-", ".")
    if notation == "parens":
        if "(" in national or " " not in national:
            return None
        head, rest = national.split(" ", 1)
        return "(" + head + ") " + rest
    if notation == "trunk_paren":
        if region not in _TRUNK0:
            return None
        return "+" + cc + " (0)" + intl.format(*nsn)[len(cc) + 2:]
    if notation == "idd":
        idd = _IDD.get(region)
        if idd is None:
            return None
        return idd + cc + " " + intl.format(*nsn)[len(cc) + 2:]
    if notation == "cc_digits":
        return cc + nsn
    if notation == "us_one":
        if cc != "1":
            return None
        return "1-" + nsn[:3] + "-" + nsn[3:6] + "-" + nsn[6:]
    raise ValueError(notation)


# How often each notation is picked (only the notations valid for the table are used).
_NOTATION_WEIGHTS = {"e164": 26, "intl": 18, "national": 22, "national_digits": 7, "dashes": 6,
                     "dots": 3, "parens": 3, "trunk_paren": 4, "idd": 4, "cc_digits": 4,
                     "us_one": 3}
_EXTENSIONS = (" x{}", " ext. {}", " ext {}", " Ext.{}", " EXT {}", " x {}")


# --------------------------------------------------------------------------
# Per-country prepared pools
# --------------------------------------------------------------------------

class _Country:
    __slots__ = ("code", "iso3", "names", "weight", "first_m", "first_f", "cum_m", "cum_f",
                 "last", "cum_last", "common", "region_field", "state_code_p", "slash",
                 "double_surname", "cities", "postal", "street_style", "streets", "domains",
                 "cum_domains", "company_suffix", "company_tld", "english", "mobile", "fixed",
                 "country_forms", "cum_country_forms", "tail_pre", "tail_suf",
                 "core_last")


def _zipf_cum(n: int, s: float = 0.9) -> list[float]:
    cum, total = [], 0.0
    for i in range(n):
        total += 1.0 / (i + 1) ** s
        cum.append(total)
    return cum


@lru_cache(maxsize=None)
def _countries() -> tuple[dict, list, list]:
    tables = _phone_tables()
    out = {}
    for code, d in _COUNTRY_DATA.items():
        c = _Country()
        c.code = code
        c.iso3 = d["iso3"]
        c.names = d["names"]
        c.weight = d["weight"]
        c.first_m = _split(d["first_m"])
        c.first_f = _split(d["first_f"])
        c.cum_m = _zipf_cum(len(c.first_m), 0.5)
        c.cum_f = _zipf_cum(len(c.first_f), 0.5)
        c.last = _split(d["last"])
        c.core_last = frozenset(c.last)
        c.cum_last = _zipf_cum(len(c.last), 0.4)
        pre, suf = _SURNAME_TAILS[code]
        c.tail_pre = pre.split()
        c.tail_suf = [x.replace("_", "") for x in suf.split()]
        c.common = [tuple(x.split(" ", 1)) for x in d["common"]]
        c.region_field = d["region_field"]
        c.state_code_p = d["state_code_p"]
        c.slash = d["slash"]
        c.double_surname = d.get("double_surname", False)
        c.cities = []
        for names, scode, sfull, prefixes in d["cities"]:
            c.cities.append((tuple(names.split("|")), scode, sfull, tuple(prefixes.split())))
        c.postal = d["postal"]
        c.street_style = d["street_style"]
        c.streets = _split(d["streets"])
        doms, weights = [], []
        for item in d["emails"].split():
            dom, w = item.split(":")
            doms.append(dom)
            weights.append(int(w))
        c.domains = doms
        c.cum_domains = list(_accumulate(weights))
        c.company_suffix = [tuple(x.replace("_", " ").split("|"))
                            for x in d["company_suffix"].split()]
        c.company_tld = d["company_tld"]
        c.english = code in ("US", "GB", "CA", "AU", "ZA")
        c.mobile = tables[(code, "MOBILE")]
        c.fixed = tables[(code, "FIXED")]
        # Country as written on a profile: ISO-2, ISO-3, English name, local names.
        forms = [code, c.iso3] + list(c.names)
        wts = [45, 15] + [30 if i == 0 else 10 / max(1, len(c.names) - 1)
                          for i in range(len(c.names))]
        c.country_forms = forms
        c.cum_country_forms = list(_accumulate(wts))
        out[code] = c
    codes = list(out)
    cum = list(_accumulate(out[k].weight for k in codes))
    return out, codes, cum


def _accumulate(values):
    total = 0
    for v in values:
        total += v
        yield total


@lru_cache(maxsize=None)
def _nicknames() -> dict:
    """English given name -> tuple of nicknames, weighted towards the usual ones."""
    from nicknames import name_triplets

    raw = defaultdict(list)
    for a, rel, b in name_triplets():
        if rel == "has_nickname" and len(b) >= 3 and b.isalpha():
            raw[a].append(b)
    out = {}
    for name, nicks in raw.items():
        weighted = []
        for n in nicks:
            # nicknames sharing the initial ("Kate" for Katherine) are the common ones
            weighted.extend([n.capitalize()] * (3 if n[0] == name[0] else 1))
        out[name] = tuple(weighted)
    return out


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------

class _Chunk:
    """Generates one chunk of exactly `quota` valid profiles."""

    def __init__(self, seed, chunk_index: int, quota: int):
        self.rng = random.Random("profile-dedup:%s:%d" % (seed, chunk_index))
        self.quota = quota
        self.entity_base = chunk_index * CHUNK
        self.next_entity = 0
        # fresh-number counters: a seed-dependent offset plus a range per chunk
        offset = random.Random("counter:%s" % (seed,)).getrandbits(40)
        self.counter = offset + chunk_index * CHUNK * _SLOTS
        self.counter_end = self.counter + CHUNK * _SLOTS
        self.countries, self.codes, self.cum_codes = _countries()
        self.nick = _nicknames()
        self.profiles = []       # (profile dict, entity id)
        self.groups = []         # (kind, [entity ids])
        self.companies = []
        self.placeholder_phone = 0
        self.placeholder_email = 0
        self.junk_phone = 0

    # ---- small helpers -------------------------------------------------
    def fresh(self) -> int:
        c = self.counter
        self.counter += 1
        if self.counter > self.counter_end:
            # never expected (the budget is 8 fresh numbers per profile); the
            # numbers stay valid, they just could repeat across chunks
            c = self.rng.randrange(1 << 40)
        return c

    def new_entity(self) -> int:
        e = self.entity_base + self.next_entity
        self.next_entity += 1
        return e

    def pick_country(self, code=None):
        if code is None:
            code = self.rng.choices(self.codes, cum_weights=self.cum_codes)[0]
        return self.countries[code]

    def dob(self, lo=1938, hi=2006):
        r = self.rng
        y = r.randint(lo, hi)
        m = r.randint(1, 12)
        dmax = _DAYS_IN[m - 1] + (1 if m == 2 and y % 4 == 0 and y % 100 != 0 or
                                  m == 2 and y % 400 == 0 else 0)
        return (y, m, r.randint(1, dmax))

    def postal(self, c, prefixes):
        r = self.rng
        p = r.choice(prefixes)
        out = []
        letters = _CA_LETTERS if c.code == "CA" else _NL_LETTERS if c.code == "NL" else _GB_LETTERS
        for ch in c.postal.replace("{p}", "\0"):
            if ch == "\0":
                out.append(p)
            elif ch == "#":
                out.append(str(r.randint(0, 9)))
            elif ch == "@":
                out.append(r.choice(letters))
            else:
                out.append(ch)
        s = "".join(out)
        if c.code == "US" and r.random() < 0.12:
            s += "-%04d" % r.randint(1, 9999)
        return s

    def street(self, c):
        """Returns (full form, abbreviated form, Address2 or None)."""
        r = self.rng
        name = r.choice(c.streets)
        style = c.street_style
        n = r.randint(1, 250)
        a2 = None
        if style == "en_us":
            sfx = r.choice(("Street", "Avenue", "Road", "Boulevard", "Drive", "Lane", "Court"))
            full = "%d %s %s" % (n * (r.choice((1, 1, 10, 13))), name, sfx)
            if r.random() < 0.2:
                a2 = r.choice(("Apt %d", "Apt. %d", "Unit %d", "Suite %d", "#%d")) % r.randint(1, 40)
        elif style == "en_gb":
            sfx = r.choice(("Street", "Road", "Avenue", "Lane", "Close", "Crescent", "Drive"))
            full = "%d %s %s" % (n, name, sfx)
            if r.random() < 0.15:
                a2 = r.choice(("Flat %d", "Unit %d", "Apartment %d")) % r.randint(1, 30)
        elif style == "de":
            sfx = r.choice(("straße", "straße", "weg", "allee", "platz", "gasse"))
            full = "%s%s %d" % (name, sfx, n % 120 + 1)
            if r.random() < 0.05:
                full += r.choice(("a", "b"))
        elif style == "fr":
            typ = r.choice(("rue", "rue", "avenue", "boulevard", "place", "allée"))
            full = "%d%s %s %s" % (n % 150 + 1, " bis" if r.random() < 0.04 else "", typ, name)
            if r.random() < 0.1:
                a2 = r.choice(("Bâtiment B", "Appartement %d" % r.randint(1, 60), "Résidence Les Pins"))
        elif style == "es":
            typ = r.choice(("Calle", "Calle", "Avenida", "Plaza", "Paseo"))
            full = "%s %s, %d" % (typ, name, n % 200 + 1)
            if r.random() < 0.5:
                a2 = "%dº %s" % (r.randint(1, 9), r.choice("ABCD"))
        elif style == "it":
            typ = r.choice(("Via", "Via", "Viale", "Piazza", "Corso"))
            full = "%s %s %d" % (typ, name, n % 180 + 1)
        elif style == "nl":
            sfx = r.choice(("straat", "straat", "weg", "laan", "plein", "gracht"))
            full = "%s%s %d" % (name, sfx, n % 200 + 1)
            if r.random() < 0.1:
                full += r.choice(("-A", "A", " bis", "-2"))
        elif style == "br":
            typ = r.choice(("Rua", "Rua", "Avenida", "Travessa"))
            full = "%s %s, %d" % (typ, name, n * 7)
            if r.random() < 0.4:
                a2 = r.choice(("Apto %d", "Apt %d", "Casa %d", "Bloco B, Apto %d")) % r.randint(1, 300)
        elif style == "mx":
            typ = r.choice(("Calle", "Avenida", "Avenida", "Calzada"))
            full = "%s %s %d" % (typ, name, n * 3)
            a2 = "Col. " + r.choice(("Centro", "Roma Norte", "Del Valle", "Polanco", "Juárez",
                                     "Condesa", "Americana", "Providencia"))
        elif style == "jp":
            full = "%d-%d-%d %s" % (r.randint(1, 9), r.randint(1, 30), r.randint(1, 40), name)
        elif style == "in":
            full = "%d, %s" % (n, name)
            a2 = r.choice(("Andheri West", "Koramangala", "Banjara Hills", "Salt Lake",
                           "Indiranagar", "Bandra East", "T Nagar", "Malviya Nagar"))
        else:  # pragma: no cover
            full = "%d %s" % (n, name)
        abbr = full
        for a, b in _ABBR.get(style, ()):
            if a in abbr:
                abbr = abbr.replace(a, b, 1)
                break
        return (full, abbr, a2)

    def address(self, c, city=None):
        r = self.rng
        if city is None:
            city = c.cities[int(r.random() ** 1.6 * len(c.cities))]
        full, abbr, a2 = self.street(c)
        return {"c": c, "a1": full, "a1b": abbr, "a2": a2, "city": city,
                "postal": self.postal(c, city[3])}

    def phone(self, c, kind="MOBILE"):
        t = c.mobile if kind == "MOBILE" else c.fixed
        return t.number(self.fresh())

    def name_pick(self, c, gender):
        r = self.rng
        if gender == "M":
            return r.choices(c.first_m, cum_weights=c.cum_m)[0]
        return r.choices(c.first_f, cum_weights=c.cum_f)[0]

    def surname(self, c):
        r = self.rng
        if r.random() < 0.5:
            return r.choices(c.last, cum_weights=c.cum_last)[0]
        suf = r.choice(c.tail_suf)
        name = r.choice(c.tail_pre) + suf
        if c.code == "NL" and not suf:
            name = r.choice(_NL_ARTICLES) + name          # "van der Hoek"
        return name

    def last_pick(self, c):
        r = self.rng
        last = self.surname(c)
        if c.double_surname and r.random() < 0.75:
            second = self.surname(c)
            if second != last:
                last = last + " " + second
        return last

    def email_for(self, c, first, last, year, digits=False):
        r = self.rng
        f, l = _email_token(first), _email_token(last)
        if not f:
            f = "user"
        if not l:
            l = "x"
        x = r.random()
        full = x < 0.68                      # local part holds the whole name
        if x < 0.32:
            local = f + "." + l
        elif x < 0.47:
            local = f + l
        elif x < 0.60:
            local = f + "_" + l if x < 0.55 else l + "." + f
        elif x < 0.68:
            local = f + "." + l[0] + l[1:4]
        elif x < 0.82:
            local = f[0] + l
        elif x < 0.92:
            local = f + l[0]
        else:
            local = f
        # People with a common surname rarely get a plain 'anna.becker@' (the
        # address was taken long ago): they get a number.  Digit-free and
        # birth-year addresses go to long-tail surnames only.
        y = r.random()
        rare = full and not digits and last.split(" ")[0] not in c.core_last
        if rare and y < 0.25:
            pass                             # no digits: 'anna.hartwood@...'
        elif rare and y < 0.5:
            local += "%02d" % (year % 100) if y < 0.4 else str(year)
        else:
            local += str(r.randint(10, 99999))
        dom = r.choices(c.domains, cum_weights=c.cum_domains)[0]
        return local + "@" + dom

    def account_number(self):
        r = self.rng
        v = (self.fresh() * 2_147_483_629 + 12_345) % 10 ** 9
        style = r.random()
        if style < 0.5:
            return "%09d" % v
        if style < 0.8:
            return "ACC-%09d" % v
        return "C%d" % v

    def company(self, c):
        """A company of country c (reused so that coworkers appear)."""
        r = self.rng
        same = [co for co in self.companies if co["c"] is c]
        if same and r.random() < 0.7:
            return same[int(r.random() ** 2 * len(same))]
        base = r.choice(c.last).replace(" ", "")
        kind = r.choice(("Consulting", "Logistics", "Bakery", "Motors", "Dental", "Legal",
                         "Design", "Systems", "Foods", "Builders", "Media", "Pharma"))
        sfx = r.choice(c.company_suffix)
        address = self.address(c)
        co = {"c": c, "name": "%s %s" % (base, kind), "suffix": sfx,
              "domain": self.domain(c, base, kind, address),
              "switchboard": self.phone(c, "FIXED"),
              "address": address, "employees": [], "locals": set()}
        self.companies.append(co)
        return co

    def domain(self, c, base, kind, address):
        """Company web domain: name, often the town, sometimes a number."""
        r = self.rng
        town = _email_token(address["city"][0][0])
        x = r.random()
        label = _email_token(base) + kind.lower()
        if x < 0.6:
            label += "-" + town if r.random() < 0.5 else town
        label += str(r.randint(1, 999)) if x >= 0.3 else ""
        return label + "." + c.company_tld

    # ---- entities ------------------------------------------------------
    def person(self, c, gender=None, first=None, last=None, dob=None, addr=None):
        r = self.rng
        if gender is None:
            gender = "M" if r.random() < 0.49 else "F"
        first = first or self.name_pick(c, gender)
        last = last or self.last_pick(c)
        if dob is None:
            dob = self.dob()
        middle = None
        if r.random() < (0.25 if c.english else 0.08):
            middle = self.name_pick(c, gender)
            if middle == first:
                middle = None
        kanji = None
        if c.code == "JP" and r.random() < 0.35 and first in _KANJI and last in _KANJI:
            kanji = (_KANJI[first], _KANJI[last])
        p = {
            "kind": "person", "c": c, "gender": gender, "first": first, "middle": middle,
            "last": last, "kanji": kanji, "dob": dob,
            "mobile": self.phone(c, "MOBILE") if r.random() < 0.88 else None,
            "home": self.phone(c, "FIXED") if r.random() < 0.35 else None,
            "work": None, "work_ext": None,
            "email": self.email_for(c, first, last, dob[0]) if r.random() < 0.85 else None,
            "email2": None, "work_email": None, "company": None,
            "addr": addr or self.address(c), "ship": None,
            "account": self.account_number() if r.random() < 0.25 else None,
            "loyalty": r.choice(LOYALTY) if r.random() < 0.3 else None,
            "profile_type": "PROFILE",
        }
        if p["email"] is not None and r.random() < 0.12:
            p["email2"] = self.email_for(c, first, last, dob[0])
        if r.random() < 0.08:
            p["ship"] = self.address(c)
        if r.random() < 0.22 and dob[0] < 2003:
            self.employ(p)
        return p

    def employ(self, p, company=None):
        r = self.rng
        c = p["c"]
        co = company or self.company(c)
        p["company"] = co
        if r.random() < 0.7:
            p["work"] = co["switchboard"]
            if r.random() < 0.5:
                p["work_ext"] = str(r.randint(10, 9999))
        else:
            p["work"] = self.phone(c, "FIXED")
        f, l = _email_token(p["first"]), _email_token(p["last"]) or "x"
        style = r.random()
        local = (f + "." + l) if style < 0.6 else (f[:1] + l) if style < 0.85 else (f + l[:1])
        taken = co["locals"]
        if local in taken:                    # a second J. Smith at the same firm
            n = 2
            while "%s%d" % (local, n) in taken:
                n += 1
            local = "%s%d" % (local, n)
        taken.add(local)
        p["work_email"] = local + "@" + co["domain"]
        co["employees"].append(p)

    # ---- scenarios -----------------------------------------------------
    def scenario(self):
        r = self.rng
        x = r.random()
        if x < 0.83:
            self.emit_entity(self.person(self.pick_country()))
        elif x < 0.90:
            self.family()
        elif x < 0.91:
            self.twins()
        elif x < 0.95:
            self.business_owner()
        elif x < 0.97:
            self.common_names()
        else:
            self.coworkers()

    def family(self):
        r = self.rng
        c = self.pick_country()
        last = self.last_pick(c)
        addr = self.address(c)
        home = self.phone(c, "FIXED")
        shared_email = None
        if r.random() < 0.3:
            dom = r.choices(c.domains, cum_weights=c.cum_domains)[0]
            shared_email = r.choice(("the%ss", "%sfamily", "%s.home", "familia%s")) % \
                _email_token(last.split(" ")[0]) + str(r.randint(1, 9999)) + "@" + dom
        shared_account = self.account_number() if r.random() < 0.15 else None
        y0 = r.randint(1945, 1985)
        size = r.choice((2, 2, 3, 3, 4, 5))
        members = []
        used_first = set()
        for i in range(size):
            if i == 0:
                g, dob = r.choice("MF"), self.dob(y0, y0)
            elif i == 1:
                g = "F" if members[0]["gender"] == "M" else "M"
                yy = min(2006, y0 + r.randint(-5, 5))
                dob = self.dob(yy, yy)
            else:
                g = r.choice("MF")
                yy = min(2008, y0 + r.randint(20, 38))
                dob = self.dob(yy, yy)
            first = self.name_pick(c, g)
            tries = 0
            while first in used_first and tries < 10:
                first = self.name_pick(c, g)
                tries += 1
            if first in used_first:
                continue
            used_first.add(first)
            # a spouse sometimes keeps their own surname
            own_last = last if (i != 1 or r.random() < 0.8) else self.last_pick(c)
            p = self.person(c, gender=g, first=first, last=own_last, dob=dob, addr=addr)
            p["home"] = home
            if i >= 2 and r.random() < 0.5:
                p["mobile"] = None
            if shared_email and (i < 2 or r.random() < 0.5):
                if p["email"] is None or r.random() < 0.6:
                    p["email"] = shared_email
                else:
                    p["email2"] = shared_email
            if shared_account:
                p["account"] = shared_account
            members.append(p)
        ids = [self.emit_entity(p) for p in members]
        self.groups.append(("family", ids))

    def twins(self):
        r = self.rng
        c = self.pick_country()
        last = self.last_pick(c)
        addr = self.address(c)
        dob = self.dob(1950, 2006)
        home = self.phone(c, "FIXED") if r.random() < 0.6 else None
        g1 = r.choice("MF")
        g2 = g1 if r.random() < 0.6 else ("F" if g1 == "M" else "M")
        f1 = self.name_pick(c, g1)
        f2 = self.name_pick(c, g2)
        while f2 == f1:
            f2 = self.name_pick(c, g2)
        ids = []
        for g, f in ((g1, f1), (g2, f2)):
            p = self.person(c, gender=g, first=f, last=last, dob=dob, addr=addr)
            if home:
                p["home"] = home
            ids.append(self.emit_entity(p))
        self.groups.append(("twins", ids))

    def business_owner(self):
        r = self.rng
        c = self.pick_country()
        owner = self.person(c)
        if owner["mobile"] is None:
            owner["mobile"] = self.phone(c, "MOBILE")
        if owner["email"] is None:
            owner["email"] = self.email_for(c, owner["first"], owner["last"], owner["dob"][0])
        kind = r.choice(("Plumbing", "Consulting", "Catering", "Electrical", "Design",
                         "Photography", "Cleaning", "Tutoring", "Landscaping", "Bakery"))
        base = owner["last"].split(" ")[0]
        name = r.choice(("%s %s", "%s's %s", "%s & Sons %s")) % (base, kind)
        biz_addr = owner["addr"] if r.random() < 0.5 else self.address(c)
        biz = {
            "kind": "business", "c": c, "business": name, "suffix": r.choice(c.company_suffix),
            "first": owner["first"], "last": owner["last"], "kanji": None,
            "contact_p": 0.4, "gender": owner["gender"], "middle": None, "dob": None,
            "mobile": owner["mobile"], "home": None,
            "work": self.phone(c, "FIXED") if r.random() < 0.5 else None, "work_ext": None,
            "email": owner["email"], "email2": None,
            "work_email": ("%s@%s" % (r.choice(("info", "hello", "office", "contact")),
                                      self.domain(c, base, kind, biz_addr)))
            if r.random() < 0.5 else None,
            "company": None,
            "addr": biz_addr,
            "ship": None, "account": self.account_number(), "loyalty": None,
            "profile_type": "ACCOUNT_PROFILE",
        }
        if r.random() < 0.3:
            owner["account"] = biz["account"]
        ids = [self.emit_entity(owner), self.emit_entity(biz)]
        self.groups.append(("business_owner", ids))

    def common_names(self):
        r = self.rng
        c = self.pick_country()
        first, last = r.choice(c.common)
        gender = "F" if first in c.first_f and first not in c.first_m else "M"
        city = c.cities[0]
        ids = []
        for _ in range(r.randint(2, 4)):
            p = self.person(c, gender=gender, first=first, last=last, addr=self.address(c, city))
            p["middle"] = None
            if p["email"] is not None:
                p["email"] = self.email_for(c, first, last, p["dob"][0], digits=True)
            ids.append(self.emit_entity(p))
        self.groups.append(("common_name", ids))

    def coworkers(self):
        r = self.rng
        c = self.pick_country()
        co = self.company(c)
        ids = []
        for _ in range(r.randint(2, 5)):
            p = self.person(c, dob=self.dob(1950, 2000))
            if p["company"] is not co:
                if p["company"] is not None:
                    old = p["company"]
                    old["employees"] = [e for e in old["employees"] if e is not p]
                self.employ(p, co)
            ids.append(self.emit_entity(p))
        self.groups.append(("coworkers", ids))

    # ---- duplicates and rendering -------------------------------------
    def emit_entity(self, p) -> int:
        """Render the entity's profiles (original + duplicates); returns its id."""
        r = self.rng
        eid = self.new_entity()
        p["eid"] = eid
        x = r.random()
        ndup = 0 if x < 0.70 else 1 if x < 0.865 else 2 if x < 0.94 else 3 if x < 0.975 else 4
        self.render(p, eid, dup=False)
        for _ in range(ndup):
            self.render(self.mutate(p), eid, dup=True)
        return eid

    def typo(self, s: str) -> str:
        r = self.rng
        if len(s) < 3:
            return s
        i = r.randint(1, len(s) - 2)
        op = r.random()
        if op < 0.3:
            return s[:i] + s[i + 1] + s[i] + s[i + 2:]
        if op < 0.55:
            return s[:i] + s[i + 1:]
        ch = s[i].lower()
        near = _KEYBOARD.get(ch)
        new = r.choice(near) if near else r.choice(_LETTERS)
        if op < 0.8:
            return s[:i] + new + s[i:]
        return s[:i] + new + s[i + 1:]

    def mutate(self, p):
        """A copy of entity p as a second source system would hold it."""
        r = self.rng
        q = dict(p)
        c = p["c"]
        nick = self.nick
        first, last = q["first"], q["last"]
        if q["kanji"] and r.random() < 0.25:
            q["kanji"] = None                       # the same person in romaji
        x = r.random()
        if c.english and x < 0.25:
            alts = nick.get(first.lower())
            if alts:
                first = r.choice(alts)
        elif x < 0.35 and first in _SPELLINGS:
            first = r.choice(_SPELLINGS[first])
        if r.random() < 0.12:
            first = self.typo(first)
        if r.random() < 0.12:
            last = self.typo(last)
        if last in _SPELLINGS and r.random() < 0.4:
            last = r.choice(_SPELLINGS[last])
        if c.double_surname and " " in last and r.random() < 0.35:
            last = last.split(" ")[0]
        if r.random() < 0.3:
            if c.code == "DE" and r.random() < 0.6:
                first, last = _german_translit(first), _german_translit(last)
            else:
                first, last = _fold(first), _fold(last)
        if r.random() < (0.08 if c.code == "JP" else 0.02):
            first, last = last, first
        q["first"], q["last"] = first, last
        if q["middle"] and r.random() < 0.5:
            q["middle"] = None if r.random() < 0.6 else q["middle"][0] + "."
        # birth date typo: day/month swapped or a digit off
        if q["dob"] and r.random() < 0.04:
            y, m, d = q["dob"]
            if d <= 12 and d != m:
                q["dob"] = (y, d, m)
            else:
                q["dob"] = (y, m, max(1, min(28, d + r.choice((-1, 1)))))
        # contact changes
        if q["mobile"] is not None and r.random() < 0.08:
            q["mobile"] = self.phone(c, "MOBILE")
        if q["email"] is not None and r.random() < 0.10:
            q["email2"], q["email"] = q["email"], self.email_for(
                c, p["first"], p["last"], (p["dob"] or (1980,))[0])     # a new address
        elif q["email"] is not None and r.random() < 0.35:
            q["email"] = self.email_variant(q["email"])
        if r.random() < 0.12:
            city = q["addr"]["city"] if r.random() < 0.5 else None
            q["addr"] = self.address(c, city)       # moved house
        elif r.random() < 0.05:
            a = dict(q["addr"])
            a["a1"] = self.typo(a["a1"])
            a["a1b"] = a["a1"]
            q["addr"] = a
        if q["kind"] == "business":
            q["business"] = self.business_variant(q["business"])
        return q

    def email_variant(self, email: str) -> str:
        r = self.rng
        local, _, dom = email.partition("@")
        x = r.random()
        if dom in ("gmail.com", "googlemail.com") and x < 0.5:
            y = r.random()
            if y < 0.35:
                dom = "googlemail.com" if dom == "gmail.com" else "gmail.com"
            elif y < 0.7 and "." in local:
                local = local.replace(".", "")
            elif len(local) > 3:
                i = r.randint(1, len(local) - 1)
                local = local[:i] + "." + local[i:]
                local = local.replace("..", ".")
            else:
                local = local + "+" + r.choice(("shop", "news", "promo", "amazon"))
        elif x < 0.7:
            local = local + "+" + r.choice(("shop", "news", "promo", "orders", "1"))
        elif x < 0.9:
            return local.capitalize() + "@" + dom.capitalize()
        else:
            return (local + "@" + dom).upper()
        return local + "@" + dom

    def business_variant(self, name: str) -> str:
        r = self.rng
        x = r.random()
        if x < 0.2:
            return name.upper()
        if x < 0.3:
            return name.replace("'s", "s")
        return name

    def dob_text(self, c, dob):
        r = self.rng
        y, m, d = dob
        x = r.random()
        if x < 0.40:
            return "%04d-%02d-%02d" % (y, m, d)
        if x < 0.65:
            pad = r.random() < 0.85
            a, b = (m, d) if c.slash == "MDY" else (d, m)
            return ("%02d/%02d/%04d" if pad else "%d/%d/%04d") % (a, b, y)
        if x < 0.82:
            return "%04d%02d%02d" % (y, m, d)
        return "%d %s %04d" % (d, _MONTHS[m - 1], y)

    def fmt_phone(self, ph, ext=None):
        r = self.rng
        table = ph[5]
        notation = r.choices(table.formats, cum_weights=_cum_notation(table.formats))[0]
        s = _render_phone_notation(ph, notation)
        if ext is not None:
            s += r.choice(_EXTENSIONS).format(ext)
        return s

    def noisy(self, s: str, p_case: float) -> str:
        r = self.rng
        x = r.random()
        if x < p_case:
            return s.upper()
        if x < p_case * 1.6:
            return s.lower()
        if x < p_case * 1.6 + 0.03:
            return " " + s + " " if r.random() < 0.5 else s.replace(" ", "  ") + " "
        return s

    def render_address(self, a, p_fields):
        r = self.rng
        c = a["c"]
        city_names, scode, sfull, _ = a["city"]
        out = {}
        a1 = a["a1b"] if r.random() < 0.35 else a["a1"]
        if r.random() < 0.05:
            a1 = a1.upper()
        out["Address1"] = a1
        if a["a2"] and r.random() < 0.8:
            out["Address2"] = a["a2"]
        if r.random() < p_fields:
            city = city_names[0] if len(city_names) == 1 or r.random() < 0.7 else r.choice(city_names[1:])
            out["City"] = city.upper() if r.random() < 0.05 else city
        if c.region_field and sfull and r.random() < 0.8:
            use_code = scode and r.random() < c.state_code_p
            out[c.region_field] = scode if use_code else sfull
        if r.random() < p_fields + 0.05:
            pc = a["postal"]
            if " " in pc and r.random() < 0.2:
                pc = pc.replace(" ", "")
            elif "-" in pc and c.code in ("BR", "JP") and r.random() < 0.3:
                pc = pc.replace("-", "")
            if r.random() < 0.04:
                pc = pc.lower()
            out["PostalCode"] = pc
        if r.random() < 0.88:
            form = r.choices(c.country_forms, cum_weights=c.cum_country_forms)[0]
            if r.random() < 0.05:
                form = form.upper() if r.random() < 0.5 else form.lower()
            out["Country"] = form
        return out

    def render(self, p, eid, dup: bool):
        r = self.rng
        c = p["c"]
        src = r.choices(SOURCES, cum_weights=_SOURCE_CUM)[0]
        # how likely each group of fields is to be filled, by source system
        if src == "crm":
            pd, pph, pem, pad = 0.8, 0.92, 0.9, 0.9
        elif src == "web":
            pd, pph, pem, pad = 0.45, 0.55, 1.0, 0.6
        elif src == "pos":
            pd, pph, pem, pad = 0.2, 0.85, 0.5, 0.3
        else:
            pd, pph, pem, pad = 0.55, 1.0, 0.4, 0.7
        if dup:
            pd, pph, pem, pad = pd * 0.85, pph * 0.9, pem * 0.9, pad * 0.85
        pid = "%032x" % r.getrandbits(128)
        prof = {"ProfileId": pid}
        business = p["kind"] == "business"
        if p["account"] and (src in ("crm", "pos") or business) and r.random() < 0.75:
            prof["AccountNumber"] = p["account"]
        if business:
            prof["PartyType"] = "BUSINESS" if r.random() < 0.95 else "OTHER"
            name = p["business"]
            if r.random() < 0.6:
                sfx = p["suffix"]
                name = name + " " + (sfx[0] if len(sfx) == 1 or r.random() < 0.7 else sfx[1])
            prof["BusinessName"] = name
        elif r.random() < 0.7:
            prof["PartyType"] = "INDIVIDUAL"
        if not business or r.random() < p["contact_p"]:
            p_case = 0.06 if src != "pos" else 0.3
            if p["kanji"]:
                first, last = p["kanji"]
            else:
                first, last = p["first"], p["last"]
            if first and r.random() < 0.97:
                prof["FirstName"] = self.noisy(first, p_case)
            if p["middle"] and r.random() < 0.6:
                prof["MiddleName"] = p["middle"]
            if last:
                prof["LastName"] = self.noisy(last, p_case)
        if p["dob"] and r.random() < pd:
            prof["BirthDate"] = self.dob_text(c, p["dob"])
        if not business and r.random() < 0.55:
            x = r.random()
            prof["Gender"] = "UNSPECIFIED" if x < 0.04 else ("MALE" if p["gender"] == "M" else "FEMALE")

        # ---- phones: each number may land in a different field per source
        phones = {}
        if p["mobile"] is not None and r.random() < pph:
            phones["MobilePhoneNumber" if r.random() < 0.6 else "PhoneNumber"] = \
                (p["mobile"], None, "MobilePhoneNumber")
        if p["home"] is not None and r.random() < pph * 0.9:
            key = "HomePhoneNumber" if ("PhoneNumber" in phones or r.random() < 0.7) else "PhoneNumber"
            phones[key] = (p["home"], None, "HomePhoneNumber")
        if p["work"] is not None and r.random() < pph * 0.8:
            key = "BusinessPhoneNumber"
            if business and "PhoneNumber" not in phones and r.random() < 0.5:
                key = "PhoneNumber"
            phones[key] = (p["work"], p["work_ext"], "BusinessPhoneNumber")
        pref_phone = None
        for key in ("PhoneNumber", "MobilePhoneNumber", "HomePhoneNumber", "BusinessPhoneNumber"):
            v = phones.get(key)
            if v is not None:
                ext = v[1] if v[1] is not None and r.random() < 0.6 else None
                text = self.fmt_phone(v[0], ext)
                prof[key] = text
                if pref_phone is None:
                    pref_phone = key
        x = r.random()
        if x < 0.005:
            prof["PhoneNumber"] = r.choice(PLACEHOLDER_PHONES)   # call-centre number
            self.placeholder_phone += 1
        elif x < 0.007:
            prof["PhoneNumber"] = r.choice(JUNK_PHONES)
            self.junk_phone += 1

        # ---- emails
        pref_email = None
        if p["email"] is not None and r.random() < pem:
            key = "EmailAddress" if r.random() < 0.6 else "PersonalEmailAddress"
            prof[key] = self.noisy_email(p["email"])
            pref_email = key
            if p["email2"] is not None and r.random() < 0.3:
                other = "PersonalEmailAddress" if key == "EmailAddress" else "EmailAddress"
                prof[other] = p["email2"]
        if p["work_email"] is not None and r.random() < pem * 0.8:
            prof["BusinessEmailAddress"] = self.noisy_email(p["work_email"])
            if pref_email is None:
                pref_email = "BusinessEmailAddress"
        if r.random() < 0.005:
            prof["EmailAddress"] = r.choice(PLACEHOLDER_EMAILS)
            self.placeholder_email += 1

        # ---- addresses
        if r.random() < pad:
            prof["Address"] = self.render_address(p["addr"], 0.93)
        if p["ship"] is not None and r.random() < 0.5:
            prof["ShippingAddress"] = self.render_address(p["ship"], 0.95)
        elif src == "web" and r.random() < 0.1:
            prof["ShippingAddress"] = self.render_address(p["addr"], 0.95)
        if r.random() < 0.04:
            prof["BillingAddress"] = self.render_address(p["addr"], 0.95)

        # ---- attributes
        attrs = {"last_updated": _iso_ts(r.randrange(_TS_SPAN)), "source": src}
        if p["loyalty"] and r.random() < 0.8:
            attrs["loyalty_tier"] = p["loyalty"]
        if r.random() < 0.2:
            attrs["marketing_opt_in"] = "true" if r.random() < 0.6 else "false"
        prof["Attributes"] = attrs
        prof["ProfileType"] = p["profile_type"]

        # preferred contact = a phone / email this profile holds (read after any
        # placeholder overwrote a field, so KeyValue always equals the field)
        if (pref_phone or pref_email) and r.random() < 0.15:
            ep = {}
            if pref_phone:
                ep["Phone"] = [{"KeyName": "_phone", "KeyValue": prof[pref_phone], "ProfileId": pid,
                                "ContactType": pref_phone}]
            if pref_email:
                ep["Email"] = [{"KeyName": "_email", "KeyValue": prof[pref_email], "ProfileId": pid,
                                "ContactType": pref_email}]
            prof["EngagementPreferences"] = ep
        self.profiles.append((prof, eid))

    def noisy_email(self, e: str) -> str:
        x = self.rng.random()
        if x < 0.04:
            return e.upper()
        if x < 0.08:
            return e[:1].upper() + e[1:]
        if x < 0.1:
            return " " + e
        return e

    # ---- driver --------------------------------------------------------
    def run(self):
        while len(self.profiles) < self.quota:
            self.scenario()
        del self.profiles[self.quota:]
        self.rng.shuffle(self.profiles)
        kept = {e for _, e in self.profiles}
        groups = Counter()
        for kind, ids in self.groups:
            if sum(1 for e in ids if e in kept) >= 2:
                groups[kind] += 1
        for co in self.companies:
            if len({p["eid"] for p in co["employees"] if p.get("eid") in kept}) >= 2:
                groups["coworkers_sharing_company"] += 1
        sizes = Counter(e for _, e in self.profiles)
        stats = Counter()
        stats["profiles"] = len(self.profiles)
        stats["entities"] = len(sizes)
        stats["entities_with_duplicates"] = sum(1 for v in sizes.values() if v > 1)
        stats["duplicate_profiles"] = len(self.profiles) - len(sizes)
        stats["account_profiles"] = sum(1 for pr, _ in self.profiles
                                        if pr["ProfileType"] == "ACCOUNT_PROFILE")
        stats["placeholder_phone_profiles"] = self.placeholder_phone
        stats["junk_phone_profiles"] = self.junk_phone
        stats["placeholder_email_profiles"] = self.placeholder_email
        for k, v in groups.items():
            stats["group_" + k] = v
        self.stats = stats
        return self.profiles


_TS_START = 1_546_300_800           # 2019-01-01T00:00:00Z
_TS_SPAN = 1_751_241_600 - _TS_START  # up to 2025-06-30


def _iso_ts(offset: int) -> str:
    t = time.gmtime(_TS_START + offset)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t.tm_year, t.tm_mon, t.tm_mday,
                                               t.tm_hour, t.tm_min, t.tm_sec)


_SOURCE_CUM = list(_accumulate(SOURCE_WEIGHTS))


@lru_cache(maxsize=None)
def _cum_notation(formats: tuple) -> list:
    return list(_accumulate(_NOTATION_WEIGHTS[f] for f in formats))


def _chunk_sizes(n: int):
    full, rest = divmod(n, CHUNK)
    sizes = [CHUNK] * full
    if rest:
        sizes.append(rest)
    return sizes


def _make_chunk(args):
    seed, index, quota = args
    ch = _Chunk(seed, index, quota)
    profiles = ch.run()
    return profiles, ch.stats


def _address_key(value) -> str:
    """The mailbox an email address reaches: lowercase, without a +tag, and at gmail.com without dots
    (googlemail.com is the same mailbox); "" for a value without an @."""
    if not isinstance(value, str):
        return ""
    local, at, domain = value.strip().lower().partition("@")
    if not at:
        return ""
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return local + "@" + domain


def _numbered(value: str, number: int) -> str:
    """An address with a number after its local part (before a +tag), in the value's own spelling."""
    at = value.index("@")
    plus = value.find("+", 0, at)
    cut = plus if plus >= 0 else at
    return value[:cut] + str(number) + value[cut:]


_PERSONAL_EMAIL_FIELDS = ("EmailAddress", "PersonalEmailAddress")
_SHARED_ON_PURPOSE = frozenset(_address_key(e) for e in PLACEHOLDER_EMAILS)


class _Addresses:
    """The personal email addresses given out so far, across chunks, in the order they are written.

    Chunks are made independently, so two of them can give one address to two people of one rare name.
    ``settle`` gives each person of a chunk whose address an earlier chunk gave to someone else a numbered
    address instead (in every one of their profiles and engagement preferences, whatever its spelling),
    then records the chunk's addresses. Sharing within a chunk (a family's address) is a scenario's and
    stays, and so do the placeholder addresses spread on purpose."""

    def __init__(self):
        self._owner: dict[str, int] = {}

    def settle(self, profiles: list[tuple[dict, int]]) -> int:
        """Renumber, in place, the addresses of a chunk that earlier chunks gave out (one new address for each,
        shared by whoever shares it in this chunk); return the number of people renumbered."""
        owner = self._owner   # only earlier chunks' addresses so far: entities are numbered per chunk
        numbers: dict[str, int] = {}
        renumbered: set[int] = set()

        def renumber(value, entity):
            key = _address_key(value)
            if not key or key in _SHARED_ON_PURPOSE or key not in owner:
                return value
            if key not in numbers:
                number = 10 + entity * 7919 % 99_990
                while _address_key(_numbered(key, number)) in owner:
                    number += 1
                numbers[key] = number
            renumbered.add(entity)
            return _numbered(value, numbers[key])

        for prof, entity in profiles:
            for field in _PERSONAL_EMAIL_FIELDS:
                if field in prof:
                    prof[field] = renumber(prof[field], entity)
            for preference in (prof.get("EngagementPreferences") or {}).get("Email") or ():
                preference["KeyValue"] = renumber(preference.get("KeyValue"), entity)
        for prof, entity in profiles:
            for field in _PERSONAL_EMAIL_FIELDS:
                key = _address_key(prof.get(field))
                if key and key not in _SHARED_ON_PURPOSE:
                    owner.setdefault(key, entity)
        return len(renumbered)


def generate(n: int, seed=0) -> Iterator[tuple[dict, int]]:
    """Yield (profile dict, entity id) for n valid profiles; same seed, same output."""
    addresses = _Addresses()
    for index, quota in enumerate(_chunk_sizes(n)):
        profiles, _ = _make_chunk((seed, index, quota))
        addresses.settle(profiles)
        yield from profiles


# --------------------------------------------------------------------------
# Broken and edge-case lines for dead-letter tests
# --------------------------------------------------------------------------

def bad_lines(k: int, seed, existing_id: str, next_entity: int):
    """Return k (line bytes, truth row or None, kind) tuples.

    Most kinds are invalid and carry no truth row.  Two kinds are *valid* edge
    cases the pipeline must keep: a 20,000-character field value and odd but
    legal unicode; each is a new singleton entity with a truth row.
    """
    rng = random.Random("bad-lines:%s" % seed)

    def pid():
        return "%032x" % rng.getrandbits(128)

    def dumps(obj):
        return orjson.dumps(obj)

    def uuid_like():
        h = pid()
        return "-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))

    kinds = [
        ("not_json", lambda: b"this is not json, just a stray log line"),
        ("truncated_json", lambda: b'{"ProfileId": "' + pid().encode() + b'", "FirstName": "Ann'),
        ("json_array", lambda: dumps([{"ProfileId": pid(), "FirstName": "Array"}])),
        ("json_scalar", lambda: b"null"),
        ("missing_profile_id", lambda: dumps({"FirstName": "Nobody", "LastName": "Noid",
                                              "EmailAddress": "nobody@example.org"})),
        ("bad_profile_id_upper", lambda: dumps({"ProfileId": pid().upper(), "FirstName": "Upper"})),
        ("bad_profile_id_short", lambda: dumps({"ProfileId": pid()[:31], "FirstName": "Short"})),
        ("bad_profile_id_uuid", lambda: dumps({"ProfileId": uuid_like(), "FirstName": "Uuid"})),
        ("duplicate_profile_id", lambda: dumps({"ProfileId": existing_id, "FirstName": "Clash",
                                                "LastName": "Twice"})),
        ("wrong_type_first_name", lambda: dumps({"ProfileId": pid(), "FirstName": 5,
                                                 "LastName": "Number"})),
        ("wrong_type_address", lambda: dumps({"ProfileId": pid(), "FirstName": "Addr",
                                              "Address": "x"})),
        ("wrong_type_attributes", lambda: dumps({"ProfileId": pid(), "FirstName": "Attr",
                                                 "Attributes": ["not", "a", "map"]})),
        ("wrong_type_phone", lambda: dumps({"ProfileId": pid(), "FirstName": "Num",
                                            "PhoneNumber": 4420794600})),
        ("empty_line", lambda: b""),
        ("invalid_utf8", lambda: b'{"ProfileId": "' + pid().encode() + b'", "FirstName": "J\xff\xfen"}'),
        ("lone_surrogate", lambda: b'{"ProfileId": "' + pid().encode()
         + b'", "FirstName": "Bad\\ud800Name"}'),
        ("valid_huge_additional_information", None),
        ("valid_huge_last_name", None),
        ("valid_odd_unicode", None),
    ]
    out = []
    entity = next_entity
    for i in range(k):
        kind, make = kinds[i % len(kinds)]
        if kind.startswith("valid_huge"):
            p = pid()
            words = " ".join(rng.choice(("lorem", "ipsum", "dolor", "sit", "amet", "ünïcödé"))
                             for _ in range(4000))
            obj = {"ProfileId": p, "FirstName": "Huge", "LastName": "Field%d" % i,
                   "Attributes": {"source": "crm"}, "ProfileType": "PROFILE"}
            if kind.endswith("last_name"):
                obj["LastName"] = ("Longname" * 2600)[:20_000]
            else:
                obj["AdditionalInformation"] = (words * 2)[:20_000]
            out.append((dumps(obj), (p, entity), kind))
            entity += 1
        elif kind == "valid_odd_unicode":
            p = pid()
            variants = [
                {"FirstName": "Zoe\u0308", "LastName": "Mu\u0308ller"},          # decomposed (NFD)
                {"FirstName": "\uff2a\uff4f\uff48\uff4e", "LastName": "Smith\u200b"},  # fullwidth, ZWSP
                {"FirstName": "محمد", "LastName": "\u200fالعلي"},                  # RTL + RLM mark
                {"FirstName": "Ana\u00a0María", "LastName": "O\u2019Brien 🙂"},    # NBSP, curly quote, emoji
                {"FirstName": "👩\u200d💻", "LastName": "Ωmega\u0000x"},           # ZWJ emoji, NUL
            ]
            obj = {"ProfileId": p, **variants[(i // len(kinds)) % len(variants)],
                   "EmailAddress": "unicode%d@example.org" % i, "ProfileType": "PROFILE"}
            out.append((dumps(obj), (p, entity), kind))
            entity += 1
        else:
            out.append((make(), None, kind))
    return out


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, required=True, help="number of valid profiles")
    ap.add_argument("--seed", default="0", help="random seed (any string or number)")
    ap.add_argument("--output", required=True, help="profiles JSONL to write")
    ap.add_argument("--truth", required=True, help="truth CSV to write (profile_id,cluster_id)")
    ap.add_argument("--bad_lines", "--bad-lines", type=int, default=0,
                    help="append this many broken / edge-case lines")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes to use (output does not depend on it)")
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("--n must be >= 0")
    seed = args.seed

    t0 = time.perf_counter()
    _countries()  # build phone tables once in the parent (forked workers inherit them)
    jobs = [(seed, i, q) for i, q in enumerate(_chunk_sizes(args.n))]
    totals = Counter()
    first_id = None
    dumps = orjson.dumps
    with open(args.output, "wb") as fout, open(args.truth, "w", newline="") as ftruth:
        ftruth.write("profile_id,cluster_id\n")

        addresses = _Addresses()

        def consume(result):
            nonlocal first_id
            profiles, stats = result
            totals.update(stats)
            totals["people_given_a_numbered_address"] += addresses.settle(profiles)
            fout.write(b"\n".join(dumps(p) for p, _ in profiles))
            fout.write(b"\n")
            ftruth.write("".join("%s,%d\n" % (p["ProfileId"], e) for p, e in profiles))
            if first_id is None and profiles:
                first_id = profiles[0][0]["ProfileId"]

        if args.workers > 1 and len(jobs) > 1:
            import multiprocessing as mp
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(args.workers) as pool:
                for res in pool.imap(_make_chunk, jobs, chunksize=1):
                    consume(res)
        else:
            for job in jobs:
                consume(_make_chunk(job))

        bad_kinds = Counter()
        if args.bad_lines:
            rows = bad_lines(args.bad_lines, seed, first_id or "0" * 32,
                             len(jobs) * CHUNK)
            for line, truth, kind in rows:
                fout.write(line + b"\n")
                bad_kinds[kind] += 1
                if truth:
                    ftruth.write("%s,%d\n" % truth)
                    totals["valid_edge_case_profiles"] += 1
                else:
                    totals["invalid_lines"] += 1
    elapsed = time.perf_counter() - t0
    totals["valid_profiles"] = totals["profiles"] + totals["valid_edge_case_profiles"]
    print("generated %d profiles in %.1f s (seed=%s, workers=%d)"
          % (totals["profiles"], elapsed, seed, args.workers), file=sys.stderr)
    for k in sorted(totals):
        print("  %-32s %d" % (k, totals[k]), file=sys.stderr)
    if totals["entities"]:
        print("  %-32s %.1f%%" % ("entities_with_duplicates_pct",
                                  100.0 * totals["entities_with_duplicates"] / totals["entities"]),
              file=sys.stderr)
    if bad_kinds:
        print("  extra lines by kind: " + ", ".join("%s=%d" % kv for kv in sorted(bad_kinds.items())),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
