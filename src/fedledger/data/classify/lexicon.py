"""Column headers and cell values: normalization and a multilingual vocabulary.

Headers come in every convention (``customerEmail``, ``CUST_EMAIL``, ``E-Mail-Adresse``, ``Religionszugehörigkeit``,
``col_7``), so a header is split on case changes, digits and punctuation, accent-folded and lower-cased before
matching. A header matches a :data:`LEXICON` group when one of its tokens, or a run of 2-3 adjacent tokens joined,
equals a keyword; keywords of six letters or more (and shorter ones marked ``~``) also match as the head or tail of a
longer token, which reads compounds (``religion`` in ``religionszugehorigkeit``, ``gehalt`` in
``bruttojahresgehalt``, ``nummer`` in ``kundennummer``). Two groups depend on position: ``flag`` (``is_``, ``has_``
... first) and ``count`` (``num_``, ``n_``, ``number of``... first).

Keywords cover English, German, French, Spanish, Italian, Portuguese and Dutch and common abbreviations. They are
general vocabulary: no column code of a particular data set. Groups describe *what a column is about*, not its
class, so the classifier learns how groups combine with each other and with the values (``patient`` + ``id`` is an
identifier, ``is_`` + ``email`` is a flag; a ``state`` whose values are region names is a place, one whose values
are ``open``/``closed`` is a status).

:data:`VALUE_TERMS` is the same idea for cell values: words that say what a value is (``katholisch``, ``divorced``,
``Hypertension``, ``Bavaria``), each category one classifier feature (the share of sampled values that hit it).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "LEXICON",
    "VALUE_TERMS",
    "HeaderMatch",
    "fold",
    "is_meaningless",
    "match_header",
    "match_value_terms",
    "tokens",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# group -> keywords (normalized: lower case, accents folded, words of a phrase joined). Keywords of >= 6 letters, and
# those written with a trailing "~", also match as the head or tail of a longer token (compounds).
_LEXICON_SOURCE: dict[str, str] = {
    "name": """
        name names fullname firstname lastname surname surnames forename forenames givenname givennames familyname
        middlename maidenname legalname displayname contactname fname lname
        vorname vornamen nachname familienname geburtsname rufname
        nom noms prenom prenoms nomdefamille nomcomplet nomdenaissance
        nombre nombres apellido apellidos nombrecompleto
        nome cognome nominativo
        sobrenome nomecompleto
        naam voornaam voornamen achternaam voorletters tussenvoegsel volledigenaam
    """,
    "email": """
        email emails mail emailaddress mailaddress emailadresse mailadresse courriel adresseemail adressemail
        correo correoelectronico posta postaelettronica indirizzoemail enderecoeletronico emailadres mailadres
    """,
    "phone": """
        phone phones phonenumber telephone telephonenumber tel telno mobile mobilephone mobilenumber mobil mobiel
        cell cellphone cellular fax gsm msisdn contactnumber
        telefon~ telefonnummer handy handynummer mobilnummer rufnummer
        telephonique portable numerodetelephone
        telefono movil celular
        cellulare
        telefone
        telefoon telefoonnummer mobielnummer
    """,
    "national_id": """
        ssn sin nin nino socialsecurity socialsecuritynumber socialinsurance socialinsurancenumber nationalid
        nationalidentifier nationalidnumber nationalinsurance nationalinsurancenumber taxid taxnumber taxpayerid tin
        personalid personnummer personalausweisnummer
        sozialversicherung sozialversicherungsnummer rentenversicherungsnummer svnr steuerid steuernummer
        steueridentifikationsnummer identifikationsnummer ahv ahvnummer avs
        insee nir securitesociale numerosecu numerofiscal
        dni nie nif cif nss nuss curp rfc cuil cuit rut documentodeidentidad
        codicefiscale tesserasanitaria
        cpf cnpj rg nisp pis
        bsn burgerservicenummer sofinummer
        aadhaar aadhar pesel hetu henkilotunnus cpr
    """,
    "document": """
        passport passportnumber passportno driverslicense driverlicense drivinglicence drivinglicense licence license
        licensenumber idcard identitycard identitydocument vehicleregistration licenseplate licenceplate numberplate
        reisepass reisepassnummer ausweis personalausweis fuhrerschein kennzeichen
        passeport permisdeconduire cartedidentite immatriculation
        pasaporte licencia permisodeconducir matricula
        passaporto patente cartadidentita targa
        passaporte cnh carteira placa
        paspoort rijbewijs identiteitskaart kenteken
    """,
    "card": """
        creditcard creditcardnumber card cards cardnumber cardno ccnum ccnumber cc debitcard paymentcard
        kreditkarte kreditkartennummer karte kartennummer
        carte cartebancaire numerodecarte cartedecredit
        tarjeta tarjetadecredito
        carta cartadicredito
        cartao cartaodecredito
        kaart kaartnummer creditkaart
    """,
    "expiry": """
        expiry expiration expirydate expirationdate exp expdate expires validthru validthrough validuntil validto
        ablauf ablaufdatum verfall verfallsdatum gultigbis gultigkeit
        dateexpiration dateexp validite
        caducidad vencimiento fechadecaducidad fechadevencimiento
        scadenza validita datascadenza
        validade vencimento
        vervaldatum geldigtot geldigheid
    """,
    "bank_account": """
        iban bban bic swift account accounts acct accountnumber acctno accno bankaccount routing routingnumber
        sortcode aba
        konto kontonummer bankverbindung bankkonto
        compte comptebancaire rib
        cuenta cuentabancaria ccc
        conto contocorrente
        conta contabancaria
        rekening rekeningnummer bankrekening
    """,
    "address": """
        address addresses addr street streetaddress streetname homeaddress postaladdress mailingaddress
        shippingaddress billingaddress deliveryaddress addressline line1 line2 housenumber
        adresse anschrift strasse hausnummer wohnadresse postanschrift lieferadresse
        rue voie adressepostale adressedelivraison
        direccion domicilio calle
        indirizzo via spedizione
        endereco logradouro rua
        adres straat huisnummer
    """,
    "username": """
        username usernames loginname userid login handle nickname screenname alias accountname
        benutzername benutzerkennung anmeldename
        utilisateur nomdutilisateur identifiant pseudo
        usuario nombredeusuario
        nomeutente
        gebruikersnaam
    """,
    "network": """
        ip ipaddress ipaddr ipv4 ipv6 mac macaddress deviceid imei imsi hostname useragent cookie sessionid
        ipadresse adresseip direccionip indirizzoip enderecoip ipadres
    """,
    "id_word": """
        id ids identifier identification uuid guid key no nr nro num number nummer numero code codes codigo codice
        ref reference referenz referentie kennung kenn ident
    """,
    "person": """
        customer customers cust client clients patient patients user users employee employees emp staff member
        members person persons people subscriber applicant holder policyholder insured beneficiary citizen resident
        student candidate respondent participant contact owner
        kunde~ kunden patientin mitarbeiter mitarbeiterin personal versicherte versicherter bewerber mitglied
        salarie employe adherent assure personne
        cliente paciente empleado socio titular persona
        paziente dipendente utente assicurato
        funcionario segurado pessoa
        klant~ medewerker werknemer gebruiker lid persoon verzekerde
    """,
    "age": """
        age ages agegroup ageband ageyears alter lebensalter edad eta leeftijd idade
    """,
    "birth": """
        birth birthdate birthday birthplace dob born yob birthyear dateofbirth placeofbirth yearofbirth
        geburt~ geburtsdatum geburtstag geburtsjahr geburtsort
        naissance datedenaissance lieudenaissance
        nacimiento fechadenacimiento
        nascita datadinascita luogodinascita
        nascimento datadenascimento
        geboorte~ geboortedatum geboortejaar geboorteplaats
    """,
    "postcode": """
        zip zipcode zip5 postcode postcodes postal postalcode plz postleitzahl npa codepostal cap codicepostale cep
        codigopostal postnummer
    """,
    "sex": """
        sex gender geschlecht sexe genre sexo genero sesso genere geslacht
    """,
    "occupation": """
        occupation occupations job jobs jobtitle jobrole profession position employment employmentstatus
        employmenttype beruf berufsbezeichnung tatigkeit erwerbsstatus erwerbstatigkeit
        metier emploi poste situationprofessionnelle
        profesion ocupacion oficio puesto cargo situacionlaboral
        professione occupazione mansione impiego
        profissao ocupacao
        beroep functie
    """,
    "organization": """
        employer company organisation organization org firm business school university institution
        arbeitgeber firma unternehmen
        employeur entreprise societe
        empleador empresa
        datoredilavoro azienda ditta
        empregador
        werkgever bedrijf
    """,
    "department": """
        department dept division unit team abteilung bereich departement departamento reparto dipartimento ufficio
        afdeling
    """,
    "geo_area": """
        city town village municipality county state province region district canton country residence location
        stadt ort wohnort gemeinde kreis landkreis bezirk bundesland land kanton staat
        ville commune departement region pays lieu
        ciudad localidad municipio provincia comunidad pais estado
        citta comune regione paese stato
        cidade estado uf regiao distrito concelho
        stad plaats woonplaats gemeente provincie regio
    """,
    "nationality": """
        nationality nationalities citizenship nativecountry countryofbirth countryoforigin
        staatsangehorigkeit nationalitat herkunftsland
        nationalite citoyennete
        nacionalidad ciudadania
        nazionalita cittadinanza
        nacionalidade naturalidade
        nationaliteit
    """,
    "marital": """
        marital maritalstatus married civilstatus
        familienstand zivilstand
        etatcivil situationfamiliale situationmatrimoniale
        estadocivil
        statocivile
        burgerlijkestaat
    """,
    "education": """
        education educationlevel degree qualification qualifications schooling highestdegree diploma
        bildung bildungsabschluss abschluss schulabschluss ausbildung
        etudes niveaudetudes formation diplome
        educacion estudios niveleducativo formacion
        istruzione titolodistudio
        escolaridade instrucao formacao
        opleiding opleidingsniveau
    """,
    "household": """
        relationship household householdsize children kids dependents dependants spouse partner
        haushalt kinder
        menage enfants
        hogar hijos
        famiglia figli
        filhos
        huishouden kinderen
    """,
    "ethnicity": """
        race races ethnicity ethnic ethnicgroup ethnicorigin racialorigin ethnie ethnizitat origineethnique
        etnia etnico raza raca etniciteit
    """,
    "religion": """
        religion religions religious religiousaffiliation faith denomination confession church
        konfession religionszugehorigkeit glaube kirche
        religione confessione
        religiao crenca
        religie geloof kerkgenootschap
    """,
    "politics": """
        political politics politicalparty party partyaffiliation politicalaffiliation politicalopinion
        partei parteizugehorigkeit parti partido afiliacionpolitica partito partidaria filiacaopartidaria partij
    """,
    "union": """
        tradeunion unionmember unionmembership labourunion laborunion
        gewerkschaft gewerkschaftsmitglied syndicat syndique sindicato sindacato sindacale sindical vakbond
        vakbondslid
    """,
    "orientation": """
        sexualorientation sexuality sexuelleorientierung orientationsexuelle orientacionsexual orientamentosessuale
        orientacaosexual seksuelegeaardheid geaardheid
    """,
    "special": """
        genetic genetics genotype dna genome biometric biometrics fingerprint faceprint retina
        criminalrecord conviction convictions offence offense criminal vorstrafe vorstrafen strafregister
        casierjudiciaire antecedentespenales casellariogiudiziale antecedentescriminais strafblad
    """,
    "health": """
        diagnosis diagnoses diagnostic disease diseases condition conditions illness icd icd9 icd10 icdcode
        medication medications medicine medicines drug drugs prescription treatment therapy symptom symptoms allergy
        allergies surgery clinical medical health healthstatus comorbidity comorbidities chronic cancer tumor hiv
        hepatitis diabetes diabetic asthma depression pregnancy pregnant smoker smoking alcohol vaccination vaccine
        disability disabled handicap impairment
        diagnose~ krankheit erkrankung medikament medikation behandlung therapie befund symptome allergie
        gesundheit vorerkrankung raucher schwanger schwangerschaft behinderung schwerbehindert
        maladie pathologie traitement medicament symptome sante fumeur enceinte grossesse cim cim10 antecedents
        invalidite handicape
        diagnostico enfermedad patologia tratamiento medicamento medicacion sintoma alergia salud fumador
        embarazada embarazo cie cie10 antecedentes discapacidad
        diagnosi malattia trattamento terapia farmaco farmaci sintomi allergia salute fumatore incinta gravidanza
        disabilita invalidita
        doenca tratamento remedio sintoma saude fumante gravida gravidez cid deficiencia
        ziekte aandoening medicatie medicijn medicijnen symptomen gezondheid roker zwanger zwangerschap beperking
        handicap invaliditeit
    """,
    "health_measure": """
        bloodpressure bp systolic diastolic sbp dbp cholesterol chol ldl hdl triglycerides glucose bloodsugar fbs
        hba1c heartrate pulse bmi spo2 ecg~ ekg~ bloodtype bloodgroup creatinine hemoglobin
        blutdruck blutzucker cholesterin puls herzfrequenz blutgruppe
        tension tensionarterielle glycemie pouls frequencecardiaque groupesanguin
        presionarterial glucosa colesterol pulso frecuenciacardiaca gruposanguineo
        pressione pressionesanguigna pressionearteriosa glicemia colesterolo frequenzacardiaca gruppossanguigno
        pressaoarterial glicose frequenciacardiaca tiposanguineo
        bloeddruk bloedsuiker hartslag pols bloedgroep
    """,
    "body": """
        weight height bodyweight gewicht grosse korpergrosse poids taille peso altura estatura altezza lengte
    """,
    "finance": """
        income incomes salary salaries wage wages earnings pay payroll remuneration compensation bonus pension
        capitalgain capitalgains capitalloss capitallosses dividends networth wealth assets balance accountbalance
        debt debts loan loans mortgage creditscore creditrating arrears overdue bankruptcy insolvency grossincome
        netincome taxableincome
        einkommen~ gehalt~ lohn~ verdienst bezuge rente vermogen kontostand schulden kredit darlehen hypothek
        bonitat zahlungsruckstand
        revenu revenus salaire remuneration patrimoine solde dette dettes pret credit hypotheque impaye
        ingresos ingreso salario sueldo renta nomina patrimonio saldo deuda deudas prestamo credito hipoteca
        morosidad
        reddito redditi stipendio retribuzione pensione debito debiti prestito mutuo
        renda rendimento remuneracao aposentadoria divida dividas emprestimo financiamento inadimplencia
        inkomen salaris loon brutoloon nettoloon pensioen vermogen schuld schulden lening hypotheek krediet
        achterstand betalingsachterstand
    """,
    "money": """
        amount price prices cost costs fee fees total subtotal charge charges premium deductible discount tax vat
        revenue turnover sales invoiceamount
        betrag preis kosten gebuhr summe gesamt rabatt steuer mwst umsatz
        montant prix cout frais remise tva franchise
        importe precio coste costo tarifa descuento iva
        importo prezzo tariffa totale sconto
        valor preco custo desconto
        bedrag~ prijs tarief totaal korting btw
    """,
    "quantity": """
        quantity qty count counts bytes byte kb mb gb size length duration seconds secs ms minutes hours hrs days
        rate ratio percent pct percentage frequency freq volume usage views clicks visits sessions calls attempts
        items units
        menge anzahl stuck dauer stunden minuten tage anteil prozent volumen nutzung arbeitszeit
        quantite duree heures jours taux pourcentage
        cantidad duracion tamano horas minutos dias tasa porcentaje
        quantita durata dimensione ore minuti giorni tasso percentuale
        quantidade duracao tamanho percentual
        aantal hoeveelheid duur grootte uren dagen gebruik verbruik gesprekken
    """,
    "statistic": """
        sampleweight samplingweight surveyweight designweight weighting weightfactor expansionfactor
        gewichtung gewichtungsfaktor hochrechnungsfaktor ponderation poidsdesondage factordeexpansion
        pesomuestral pesocampionario pesoamostral weegfactor
    """,
    "event_time": """
        date dates time times timestamp datetime created createdat updated updatedat modified lastmodified changed
        deleted when since start end started ended period month year week day lastlogin lastseen
        datum zeit zeitpunkt zeitstempel erstellt erstelltam geandert aktualisiert angelegt beginn ende monat jahr
        heure horodatage cree creele modifie modifiele mois annee
        fecha hora creado modificado actualizado alta baja mes ano
        data ora creato modificato aggiornato mese anno
        criado modificado atualizado
        tijd tijdstip aangemaakt gewijzigd bijgewerkt laatst maand jaar
    """,
    "status": """
        status state stage phase outcome result
        zustand statut etat estado stato situacao situacion toestand
    """,
    "item": """
        product products item items article sku category categories type kind class brand model color colour plan
        tier tariff subscription package method paymentmethod channel
        produkt artikel kategorie typ marke modell farbe tarif abo abonnement
        produit categorie marque modele couleur forfait
        producto articulo categoria tipo marca modelo suscripcion
        prodotto articolo colore piano abbonamento pagamento
        produto artigo cor plano assinatura
        soort merk kleur bundel pakket
    """,
    "text": """
        comment comments note notes remark remarks description desc memo text message feedback review
        kommentar bemerkung bemerkungen notiz notizen beschreibung anmerkung
        commentaire remarque
        comentario comentarios nota notas observaciones descripcion
        commento commenti osservazioni descrizione
        observacao observacoes descricao
        opmerking opmerkingen notitie omschrijving beschrijving
    """,
    "score": """
        rating ratings score scores stars grade rank ranking level points loyalty
        bewertung punkte evaluation valoracion puntuacion valutazione punteggio voto avaliacao pontuacao
        beoordeling punten cijfer
    """,
    "tech": """
        protocol port ports packet packets src source dst dest destination srv server service connection
        connections conn session traffic request requests response error errors latency bandwidth throughput
        fragment fragments cmd cmds command shell attack intrusion alert alarm log logs http https tcp udp dns
        firewall
    """,
    "web": "url urls website homepage webpage link weburl webseite siteweb sitioweb sitoweb",
}

LEXICON: dict[str, frozenset[str]] = {
    group: frozenset(w.rstrip("~") for w in words.split()) for group, words in _LEXICON_SOURCE.items()
}
# Keywords that also match as the head or tail of a longer token.
_AFFIX: dict[str, frozenset[str]] = {
    group: frozenset(w.rstrip("~") for w in words.split() if len(w) >= 6 or w.endswith("~"))
    for group, words in _LEXICON_SOURCE.items()
}
# Positional groups: a flag ("is_active", "has_email", "possui deficiencia") and a count ("num_logins", "n_items").
_FLAG_FIRST = _words("is has was can did ist hat est tiene possui tem heeft")
_FLAG_ANY = _words("flag yn indicator optin optout consent verified enabled")
_COUNT_FIRST = _words("num n nb nbr cnt count anzahl aantal cantidad quantita quantidade quantite")
_COUNT_PAIRS = _words("numberof countof totalof")
HEADER_GROUPS: tuple[str, ...] = (*LEXICON, "flag", "count")

_MEANINGLESS = re.compile(
    r"^(col|column|field|var|variable|attr|attribute|feature|x|c|f|v|unnamed|spalte|colonne|columna|colonna|coluna|"
    r"kolom)\d*$"
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Accents removed, ``ß`` -> ``ss`` (``Religionszugehörigkeit`` -> ``Religionszugehorigkeit``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ß", "ss")


def tokens(header: str) -> list[str]:
    """``"customerEmail_Address2"`` -> ``["customer", "email", "address", "2"]``."""
    spaced = _CAMEL.sub(" ", fold(str(header)))
    return [t for t in _NON_ALNUM.split(spaced.lower()) if t]


def is_meaningless(header: str) -> bool:
    """Headers that say nothing about the column (``col_7``, ``Unnamed: 3``, ``X12``, empty)."""
    joined = "".join(t for t in tokens(header))
    return not joined or joined.isdigit() or bool(_MEANINGLESS.match(joined))


class HeaderMatch(dict[str, str]):
    """group -> the header fragment that matched it."""


def _affix_hit(token: str, keywords: frozenset[str]) -> str | None:
    for keyword in keywords:
        if len(token) >= len(keyword) + 2 and (token.startswith(keyword) or token.endswith(keyword)):
            return keyword
    return None


def match_header(header: str) -> HeaderMatch:
    """Lexicon groups the header matches, each with the fragment that matched."""
    parts = [t for t in tokens(header) if not t.isdigit()]
    candidates = list(parts)
    for width in (2, 3):
        candidates += ["".join(parts[i : i + width]) for i in range(len(parts) - width + 1)]
    found = HeaderMatch()
    for group, words in LEXICON.items():
        for candidate in candidates:
            if candidate in words or (len(candidate) > 5 and candidate.rstrip("s") in words):
                found[group] = candidate
                break
        else:
            for part in parts:
                if (keyword := _affix_hit(part, _AFFIX[group])) is not None:
                    found[group] = keyword
                    break
    if parts and (parts[0] in _FLAG_FIRST or any(p in _FLAG_ANY for p in parts)):
        found["flag"] = parts[0] if parts[0] in _FLAG_FIRST else next(p for p in parts if p in _FLAG_ANY)
    if parts and (parts[0] in _COUNT_FIRST or "".join(parts[:2]) in _COUNT_PAIRS) and len(parts) > 1:
        found["count"] = parts[0]
    return found


# --- cell values ----------------------------------------------------------------------------------------------------
# category -> (how a value matches, terms). "whole": the whole normalized value is a term; "token": one of its words
# is; "prefix": one of its words starts with a term (drug and disease stems). Normalized: folded, lower case.
_VALUE_SOURCE: dict[str, tuple[str, str]] = {
    "sex": (
        "whole",
        """
        m f w h x male female man woman men women masculine feminine nonbinary non-binary diverse divers
        mannlich weiblich homme femme masculin feminin hombre mujer varon masculino femenino maschio femmina uomo
        donna feminino vrouw mannelijk vrouwelijk
        """,
    ),
    "yes_no": (
        "whole",
        """
        yes no y n true false t f 1 0 ja nein j wahr falsch oui non o vrai faux si sim nao nee verdadero falso vero
        """,
    ),
    "marital": (
        "token",
        """
        single married divorced widowed widow widower separated unmarried spouse partnership cohabiting
        ledig verheiratet geschieden verwitwet getrennt lebenspartnerschaft
        celibataire marie mariee divorce divorcee veuf veuve separe pacse pacsee concubinage
        soltero soltera casado casada divorciado divorciada viudo viuda separado separada
        celibe nubile coniugato coniugata sposato sposata divorziato divorziata vedovo vedova separato separata
        solteiro solteira viuvo viuva uniao estavel
        ongehuwd gehuwd getrouwd gescheiden weduwe weduwnaar samenwonend
        """,
    ),
    "religion": (
        "token",
        """
        christian christianity catholic protestant evangelical lutheran anglican orthodox baptist methodist
        pentecostal mormon jehovah muslim islam islamic jewish judaism jew hindu hinduism sikh buddhist buddhism
        atheist agnostic shinto taoist religion
        katholisch katholik evangelisch protestantisch lutherisch muslimisch islamisch judisch buddhistisch
        konfessionslos atheistisch
        catholique protestante evangelique musulman musulmane juif juive bouddhiste athee agnostique
        catolica catolico protestantes evangelica evangelico musulmana musulmano judio judia budista ateo atea
        espirita umbanda candomble
        cattolica cattolico ortodossa ortodosso ebreo ebraica ebraico buddista
        judeu judaica ateu
        katholiek rooms protestants hervormd gereformeerd moslim islamitisch joods jood boeddhist boeddhistisch
        atheist
        """,
    ),
    "ethnicity": (
        "token",
        """
        white black asian hispanic latino latina caucasian african afroamerican arab indigenous aboriginal
        islander mixed multiracial biracial
        weiss schwarz asiatisch
        blanc blanche noir noire asiatique metis metisse
        blanco blanca negro negra asiatico asiatica indigena mestizo mestiza
        bianco bianca nero nera
        branca branco preta preto parda pardo amarela amarelo
        blank zwart aziatisch
        """,
    ),
    "education": (
        "token",
        """
        bachelor bachelors master masters phd doctorate doctoral diploma graduate undergraduate postgraduate college
        university highschool hs grad secondary primary elementary preschool kindergarten vocational apprenticeship
        gcse alevel associate
        abitur realschule hauptschule gymnasium ausbildung lehre hochschule fachhochschule promotion
        baccalaureat bac licence doctorat brevet
        bachillerato licenciatura grado maestria doctorado primaria secundaria
        laurea dottorato maturita
        fundamental medio superior mestrado doutorado graduacao posgraduacao tecnico
        mbo hbo vwo havo vmbo
        """,
    ),
    "health": (
        "prefix",
        """
        diabet hypert hipert ipert asthm asma astma cancer cancro krebs kanker carcino tumor tumour leukem depress
        epilep epiless arthri arthro artri artro insuffi insufi scompenso hartfalen copd bpco epoc hiv aids hepati
        migrai emicrania stroke schlaganfall ictus beroerte alzheim parkinson dementi demenz demence schizo bipolar
        anxiet angst anxiete ansiedad obesi adiposit coeliac celiac zoliak crohn scleros sklerose allerg grippe
        influenz covid pneumon neumon polmonit osteopor anemi anami hypothyr cardiopat infarct myocard angina
        disorder syndrom infection chronic
        metformin insulin ibuprofen paracetamol acetaminophen aspirin omeprazol pantoprazol esomeprazol
        atorvastatin simvastatin sinvastatin rosuvastatin lisinopril ramipril enalapril losartan losartana
        amlodipin metoprolol bisoprolol levothyrox thyroxin salbutamol prednison prednisolon warfarin amoxicillin
        amoxicilin sertralin fluoxetin citalopram escitalopram diazepam lorazepam morphin tramadol codein
        clopidogrel apixaban rivaroxaban furosemid hydrochlorothiazid gabapentin pregabalin
        """,
    ),
    "status": (
        "token",
        """
        active inactive pending open closed done completed complete cancelled canceled shipped delivered returned
        refunded approved rejected declined failed success successful processing new inprogress progress onhold
        suspended expired paid unpaid draft submitted
        offen erledigt abgeschlossen storniert versendet geliefert aktiv inaktiv bearbeitung genehmigt abgelehnt
        bezahlt
        encours termine annule expedie livre actif inactif valide refuse paye
        pendiente aprobada aprobado rechazada rechazado cancelado cancelada enviado entregado activo inactivo
        revision completado
        lavorazione spedito consegnato annullato reso attivo inattivo approvato respinto completato
        pendente concluido cancelado entregue ativo inativo aprovado recusado
        afgehandeld behandeling geannuleerd verzonden geleverd actief inactief goedgekeurd afgewezen betaald
        """,
    ),
    "country": (
        "whole",
        """
        afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain
        bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria
        burkinafaso burundi cambodia cameroon canada capeverde chad chile china colombia comoros congo costarica
        croatia cuba cyprus czechia czechrepublic denmark djibouti dominica dominicanrepublic ecuador egypt
        elsalvador england eritrea estonia eswatini ethiopia fiji finland france gabon gambia georgia germany ghana
        greece grenada guatemala guinea guyana haiti honduras hongkong hungary iceland india indonesia iran iraq
        ireland israel italy ivorycoast jamaica japan jordan kazakhstan kenya kiribati korea southkorea northkorea
        kosovo kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg
        madagascar malawi malaysia maldives mali malta mauritania mauritius mexico moldova monaco mongolia
        montenegro morocco mozambique myanmar namibia nepal netherlands holland newzealand nicaragua niger nigeria
        northmacedonia norway oman pakistan palestine panama paraguay peru philippines poland portugal puertorico
        qatar romania russia rwanda samoa sanmarino saudiarabia scotland senegal serbia seychelles sierraleone
        singapore slovakia slovenia somalia southafrica spain srilanka sudan suriname sweden switzerland syria
        taiwan tajikistan tanzania thailand togo tonga trinidad tunisia turkey turkiye turkmenistan uganda ukraine
        unitedarabemirates uae unitedkingdom uk greatbritain unitedstates usa us uruguay uzbekistan vanuatu
        venezuela vietnam wales yemen yugoslavia zambia zimbabwe
        deutschland osterreich schweiz frankreich spanien italien niederlande belgien polen tschechien ungarn
        griechenland turkei russland vereinigtestaaten vereinigteskonigreich grossbritannien china japan indien
        brasilien mexiko kanada australien schweden norwegen danemark finnland irland agypten marokko
        allemagne autriche suisse espagne italie paysbas belgique pologne grece turquie russie etatsunis
        royaumeuni chine japon inde bresil mexique suede norvege danemark finlande irlande egypte maroc algerie
        tunisie
        alemania suiza francia espana italia paisesbajos belgica polonia grecia turquia rusia estadosunidos
        reinounido japon brasil mexico canada suecia noruega dinamarca finlandia irlanda egipto marruecos
        germania svizzera francia spagna paesibassi polonia grecia russia statiuniti regnounito cina giappone
        brasile messico svezia norvegia danimarca irlanda egitto marocco
        alemanha suica franca espanha italia holanda paisesbaixos belgica polonia grecia turquia russia
        estadosunidos reinounido japao brasil mexico suecia noruega dinamarca finlandia irlanda egito
        duitsland oostenrijk zwitserland frankrijk spanje italie nederland belgie polen griekenland turkije
        rusland verenigdestaten verenigdkoninkrijk japan brazilie mexico zweden noorwegen denemarken finland
        ierland egypte marokko
        """,
    ),
    "region": (
        "whole",
        """
        alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho
        illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi
        missouri montana nebraska nevada newhampshire newjersey newmexico newyork northcarolina northdakota ohio
        oklahoma oregon pennsylvania rhodeisland southcarolina southdakota tennessee texas utah vermont virginia
        washington westvirginia wisconsin wyoming districtofcolumbia
        al ak az ar ca co ct de fl ga hi id il ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh ok or
        pa ri sc sd tn tx ut vt va wa wv wi wy dc
        ac ap am ba ce df es go mg ms mt pb pe pi pr rj rn ro rr rs se sp to
        alberta britishcolumbia manitoba newbrunswick newfoundlandandlabrador novascotia ontario
        princeedwardisland quebec saskatchewan yukon nunavut northwestterritories
        newsouthwales queensland southaustralia tasmania victoria westernaustralia northernterritory
        australiancapitalterritory
        badenwurttemberg bayern bavaria berlin brandenburg bremen hamburg hessen hesse mecklenburgvorpommern
        niedersachsen lowersaxony nordrheinwestfalen northrhinewestphalia rheinlandpfalz saarland sachsen saxony
        sachsenanhalt schleswigholstein thuringen thuringia
        burgenland karnten niederosterreich oberosterreich salzburg steiermark tirol vorarlberg wien
        zurich bern luzern uri schwyz obwalden nidwalden glarus zug freiburg fribourg solothurn baselstadt
        basellandschaft schaffhausen appenzell stgallen graubunden aargau thurgau tessin ticino waadt vaud wallis
        valais neuenburg neuchatel genf geneve jura
        auvergnerhonealpes bourgognefranchecomte bretagne centrevaldeloire corse grandest hautsdefrance iledefrance
        normandie nouvelleaquitaine occitanie paysdelaloire provencealpescotedazur alsace aquitaine auvergne
        bassenormandie bourgogne champagneardenne franchecomte hautenormandie languedocroussillon limousin lorraine
        midipyrenees nordpasdecalais picardie poitoucharentes rhonealpes guadeloupe martinique guyane lareunion
        mayotte
        andalucia aragon asturias baleares illesbalears canarias cantabria castillayleon castillalamancha cataluna
        catalunya comunidadvalenciana extremadura galicia larioja madrid murcia navarra paisvasco euskadi ceuta
        melilla
        abruzzo basilicata calabria campania emiliaromagna friuliveneziagiulia lazio liguria lombardia marche
        molise piemonte puglia sardegna sicilia toscana trentinoaltoadige umbria valledaosta veneto
        acre alagoas amapa amazonas bahia ceara distritofederal espiritosanto goias maranhao matogrosso
        matogrossodosul minasgerais para paraiba parana pernambuco piaui riodejaneiro riograndedonorte
        riograndedosul rondonia roraima santacatarina saopaulo sergipe tocantins
        drenthe flevoland friesland fryslan gelderland groningen limburg noordbrabant noordholland overijssel
        utrecht zeeland zuidholland antwerpen oostvlaanderen westvlaanderen vlaamsbrabant henegouwen luik luxemburg
        namen waalsbrabant
        """,
    ),
}

VALUE_TERMS: dict[str, tuple[str, frozenset[str]]] = {
    category: (mode, _words(text)) for category, (mode, text) in _VALUE_SOURCE.items()
}


def _value_key(value: str) -> tuple[str, list[str]]:
    """(the value folded to letters and digits only, its words)."""
    words = [w for w in _NON_ALNUM.split(fold(value).lower()) if w]
    return "".join(words), words


def match_value_terms(value: str) -> set[str]:
    """The :data:`VALUE_TERMS` categories one cell value hits."""
    whole, words = _value_key(value)
    hits = set()
    for category, (mode, terms) in VALUE_TERMS.items():
        if mode == "whole":
            hit = whole in terms
        elif mode == "token":
            hit = any(w in terms for w in words) or whole in terms
        else:
            hit = any(w.startswith(t) for w in words for t in terms if len(w) >= len(t))
        if hit:
            hits.add(category)
    return hits
